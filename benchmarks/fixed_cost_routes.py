"""Routes to a cheaper fixed cost per candidate that were tried and rejected, measured.

One command::

    .venv/bin/python -m benchmarks.fixed_cost_routes [--repeats 3] [--epochs 3] [--smoke]

Issue 13 asks to halve keras-v1's fixed cost per candidate (build, trace, first-step
graph optimisation, validation) and names two routes: eager steps for short trainings,
and reuse of traced functions. The trainer's own traced Adam took it 1.42x
(``benchmarks/estimator_throughput.py --fixed-cost-only``); this benchmark measures what
else was tried, each route interleaved with the trainer as it is (``now``), on
NSC-Bench's data and ``[keras]`` settings:

* ``grappler-off``: TensorFlow's graph optimiser switched off
  (``disable_meta_optimizer``), which skips the optimisation of each new step;
* ``layer-cache``: every layer's forward pass traced once per (layer class, config,
  input shapes, training flag) as a ``tf.function`` over Keras' ``Layer.stateless_call``
  and reused by every later candidate, so a candidate traces only calls; the calls are
  inlined into the step, as TensorFlow does by default;
* ``layer-cache-noinline``: the same, not inlined (``_noinline``), so that TensorFlow
  also optimises and instantiates each layer's function once instead of per candidate;
* ``eager``: every step run eagerly (``tf.config.run_functions_eagerly``): nothing is
  traced.

For each route and architecture the table prints the fixed cost (a training's total time
minus its epochs at its own steady rate, as ``estimator_throughput`` defines it), the
steady epoch, the whole training, and whether a seeded training's losses are
bit-identical to ``now``'s (the shipped tables and every cached result rely on them).
The ratio lines give ``now``'s whole training over each route's: above 1 the route is
cheaper per candidate. ``--smoke`` runs two epochs of one architecture on 160 digits.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from typing import Any

from benchmarks.estimator_throughput import FIXED_COST_ARCHITECTURES, digits_data

#: two of estimator_throughput's small candidates: most of their evaluation is fixed cost
ARCHITECTURES = {name: FIXED_COST_ARCHITECTURES[name] for name in ("conv+pool", "chain")}

ROUTES = ("now", "grappler-off", "layer-cache", "layer-cache-noinline", "eager")

SMOKE_SLOW = True


class LayerCachedModel:
    """A built Keras model whose layers run through traced functions shared by candidates.

    The trainer calls ``model(images, training=...)`` and reads ``trainable_variables``;
    this object answers both. Each layer's forward pass is a ``tf.function`` of (its
    variables' values, its inputs) built from the first layer seen with the same class,
    config (name left out) and input shapes, and reused by every later one: it computes
    with the values it is given (``stateless_call``), so whose layer it was traced from
    does not matter. Non-trainable updates (BatchNorm's moving statistics, the dropout
    seed state) come back as values and are written into this model's variables.
    """

    def __init__(self, model: Any, cache: dict[Any, Any], *, inline: bool) -> None:
        self.model = model
        self.trainable_variables = model.trainable_variables
        # the trainer sets the batch-norm layers' momentum through these
        self.layers = model.layers
        self._flatten_layers = model._flatten_layers
        self._cache = cache
        self._attributes = {} if inline else {"_noinline": True}

    def __call__(self, images: Any, training: bool = False) -> Any:
        return self.model._run_through_graph(
            [images], operation_fn=lambda layer: self._layer_call(layer, training)
        )

    def _layer_call(self, layer: Any, training: bool) -> Any:
        import tensorflow as tf

        def call(*args: Any, **kwargs: Any) -> Any:
            extra = {k: v for k, v in kwargs.items() if v is not None and k != "training"}
            if extra:
                raise ValueError(f"{layer.name}: keyword arguments {sorted(extra)} not cached")
            config = layer.get_config()
            config.pop("name", None)
            shapes = tuple((tuple(a.shape), a.dtype.name) for a in tf.nest.flatten(args))
            key = (type(layer), repr(sorted(config.items())), shapes, training)
            function = self._cache.get(key)
            if function is None:
                function = _traced_layer(layer, training, self._attributes)
                self._cache[key] = function
            trainable = [tf.convert_to_tensor(v.value) for v in layer.trainable_variables]
            fixed = [tf.convert_to_tensor(v.value) for v in layer.non_trainable_variables]
            outputs, updates = function(trainable, fixed, *args)
            for variable, value in zip(layer.non_trainable_variables, updates, strict=True):
                variable.assign(value)
            return outputs

        return call


def _traced_layer(template: Any, training: bool, attributes: dict[str, Any]) -> Any:
    import tensorflow as tf

    keywords = {"training": training} if "training" in template._call_signature.parameters else {}

    @tf.function(autograph=False, experimental_attributes=attributes or None)
    def forward(trainable: Any, fixed: Any, *inputs: Any) -> Any:
        return template.stateless_call(trainable, fixed, *inputs, **keywords)

    return forward


def data_and_settings(smoke: bool, epochs: int) -> tuple[Any, Any]:
    from nasframe_keras.settings import KerasSettings

    # resources/nsc-bench.ini: NSC-Bench's [keras] settings
    settings = KerasSettings(epochs=epochs, padding="same", filters=16, fc_units=128)
    if smoke:
        return digits_data(smoke=True), settings
    from nasframe_digits.shifted import ShiftedDigitsDataset

    return ShiftedDigitsDataset(canvas=20, digit=12, placements=4, eval_placements=2), settings


def train_once(
    route: str, nsc: Any, data: Any, settings: Any, cache: dict[Any, Any], seed: int | None
) -> tuple[float, list[float], list[float]]:
    """One candidate along ``route``: (total seconds, epoch seconds, epoch losses)."""
    import keras
    import tensorflow as tf
    from nasframe_keras.builder import build_model
    from nasframe_keras.trainer import train

    keras.backend.clear_session()
    if seed is not None:
        keras.utils.set_random_seed(seed)
    if route == "grappler-off":
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    if route == "eager":
        tf.config.run_functions_eagerly(True)
    try:
        start = time.perf_counter()
        model: Any = build_model(nsc, data.input_shape, data.num_classes, settings)
        if route.startswith("layer-cache"):
            model = LayerCachedModel(model, cache, inline=route == "layer-cache")
        result = train(model, data, settings, seed=seed)
        total = time.perf_counter() - start
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": False})
        tf.config.run_functions_eagerly(False)
    if result.status.value != "ok":
        raise RuntimeError(f"{route} {nsc}: {result.status.value} {result.message}")
    return total, result.epoch_seconds, result.losses


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    if args.smoke:
        args.repeats, args.epochs = 1, 2
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the steady rate needs an epoch after the first)")
    from nasframe import NSC

    data, settings = data_and_settings(args.smoke, args.epochs)
    architectures = ARCHITECTURES
    if args.smoke:
        architectures = {"conv+pool": ARCHITECTURES["conv+pool"]}
    caches: dict[str, dict[Any, Any]] = {route: {} for route in ROUTES}
    gc.freeze()  # as the estimator does: TensorFlow's objects out of the collector's reach
    for route in ROUTES:  # warm-up: imports, kernels, the layer caches' shared layers
        train_once(route, NSC.parse("1,1,1,0,0"), data, settings, caches[route], None)
    print(
        f"{data.name}, {args.epochs} epochs, {args.repeats} repeats interleaved "
        "(seconds, median over repeats)"
    )
    print(
        f"{'architecture':<12} {'route':<21} {'fixed':>6} {'epoch':>6} {'total':>6} "
        f"{'now/route':>9} {'bit-identical':>13}"
    )
    ratios: dict[str, list[float]] = {route: [] for route in ROUTES[1:]}
    for label, text in architectures.items():
        nsc = NSC.parse(text)
        fixed: dict[str, list[float]] = {route: [] for route in ROUTES}
        epoch: dict[str, list[float]] = {route: [] for route in ROUTES}
        total: dict[str, list[float]] = {route: [] for route in ROUTES}
        for repeat in range(args.repeats):
            order = ROUTES if repeat % 2 == 0 else ROUTES[::-1]
            for route in order:
                seconds, epochs, _ = train_once(route, nsc, data, settings, caches[route], None)
                steady = statistics.median(epochs[1:])
                fixed[route].append(seconds - steady * len(epochs))
                epoch[route].append(steady)
                total[route].append(seconds)
        losses = {
            route: train_once(route, nsc, data, settings, caches[route], 0)[2] for route in ROUTES
        }
        now_total = statistics.median(total["now"])
        for route in ROUTES:
            route_total = statistics.median(total[route])
            if route != "now":
                ratios[route].append(now_total / route_total)
            print(
                f"{label:<12} {route:<21} {statistics.median(fixed[route]):>6.3f} "
                f"{statistics.median(epoch[route]):>6.3f} {route_total:>6.3f} "
                f"{now_total / route_total:>9.2f} "
                f"{'yes' if losses[route] == losses['now'] else 'no':>13}"
            )
    for route, values in ratios.items():
        print(
            f"ratio now/{route} (whole training, median over architectures): "
            f"{statistics.median(values):.2f}x"
        )


if __name__ == "__main__":
    main()
