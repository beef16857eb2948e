"""Surrogate models of a table: accuracy and cost of any network, without training it.

``nasframe bench fit`` (issue 30) fits, on a table's networks, one regression model per
target over the graph features of :mod:`nasframe.bench.encoding`:

* ``val_1 .. val_E`` -- the seed-mean validation accuracy after each epoch (the build's
  ``seeds``; repeat seeds are kept for the noise figures), failed trainings counting 0
  as everywhere in NSC-Bench;
* ``test`` -- the seed-mean test accuracy;
* ``seconds`` and ``train_seconds`` -- the evaluation's wall seconds and its training
  passes', fitted on their logarithm (costs spread over orders of magnitude).

The split is by network (a network is in the training or the held-out part, never
both) and seeded. :func:`quality` reports R², Spearman and Kendall on the held-out
part, over all of it and over its best 10 %; :func:`seed_noise` the same figures between
two seeds of the networks trained twice -- the bound a surrogate cannot beat, since
it is fitted to one noisy measurement of each network.

A :class:`Surrogate` is saved as a folder: ``surrogate.json`` (the card: space, depth,
dataset and estimator of the table, the encoding's vocabulary, the model family and
its settings, the figures, the sha256 of the model file) and ``forest.npz`` (the fitted
trees as plain arrays, :class:`~nasframe.bench.forest.Forest`: compact, loaded without
pickle, and one network is predicted in a fraction of a millisecond).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nasframe.bench.encoding import PathEncoding
from nasframe.bench.forest import Forest
from nasframe.bench.table import BenchTable, TableRow
from nasframe.errors import ConfigError
from nasframe.nsc import NSC

__all__ = [
    "CARD_FILE",
    "FAMILIES",
    "HELD_OUT_FILE",
    "MODELS_FILE",
    "Surrogate",
    "fit_surrogate",
    "quality",
    "seed_noise",
    "split_networks",
    "table_targets",
    "tabulate",
]

CARD_FILE = "surrogate.json"
MODELS_FILE = "forest.npz"
HELD_OUT_FILE = "held_out.csv"

#: The model families ``bench fit`` knows, and what each needs installed.
FAMILIES = {"hgb": "scikit-learn", "lightgbm": "lightgbm"}

_LOG_TARGETS = ("seconds", "train_seconds")


@dataclass
class Targets:
    """A table's networks and what a surrogate predicts of each (see the module docs)."""

    hashes: list[str]
    networks: list[NSC]
    values: dict[str, np.ndarray]
    epochs: int


def table_targets(table: BenchTable) -> Targets:
    """The networks of ``table`` and their seed-mean targets over the build's seeds.

    Networks recorded only as ``invalid`` (they cannot be built, so nothing was
    measured) are left out: ``surrogate-v1`` answers them by the estimator's validity
    rule. Other failures (``diverged``, ``timeout``) are outcomes and count 0.
    """
    seeds = set(table.build.get("seeds") or table.seeds()[:1])
    epochs = table.max_epochs
    if epochs < 1:
        raise ConfigError(f"{table.source}: the table has no learning curves to fit")
    hashes: list[str] = []
    networks: list[NSC] = []
    columns: dict[str, list[float]] = {
        **{f"val_{e}": [] for e in range(1, epochs + 1)},
        "test": [],
        "seconds": [],
        "train_seconds": [],
    }
    for arch_hash, rows in table.by_hash.items():
        if all(row.status == "invalid" for row in rows):
            continue  # never trained (cannot be built): the estimator's rule, not a model's
        primary = [row for row in rows if row.seed in seeds] or rows[:1]
        hashes.append(arch_hash)
        networks.append(NSC.parse(primary[0].nsc) if primary[0].nsc else NSC())
        for e in range(1, epochs + 1):
            columns[f"val_{e}"].append(_mean(row.accuracy(e) for row in primary))
        columns["test"].append(_mean(_test(row) for row in primary))
        columns["seconds"].append(_mean(row.seconds for row in primary))
        columns["train_seconds"].append(_mean(row.train_seconds for row in primary))
    values = {key: np.asarray(column, dtype=np.float64) for key, column in columns.items()}
    return Targets(hashes, networks, values, epochs)


def split_networks(count: int, train_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and the held-out networks: disjoint, seeded, sorted."""
    if not 0.0 < train_fraction < 1.0:
        raise ConfigError(f"train_fraction = {train_fraction}: must be between 0 and 1")
    order = np.random.default_rng(seed).permutation(count)
    cut = min(count - 1, max(1, round(count * train_fraction)))
    return np.sort(order[:cut]), np.sort(order[cut:])


def quality(measured: np.ndarray, predicted: np.ndarray, *, top: float = 0.1) -> dict[str, float]:
    """R², Spearman and Kendall of ``predicted`` against ``measured``, overall and at the top.

    The top is the best ``top`` fraction by the measured value (at least 3 networks).
    """
    from scipy import stats  # type: ignore[import-untyped]

    def figures(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
        if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:  # no rank order to compare
            return {"r2": math.nan, "spearman": math.nan, "kendall": math.nan}
        residual = float(np.sum((a - b) ** 2))
        total = float(np.sum((a - a.mean()) ** 2))
        return {
            "r2": 1.0 - residual / total,
            "spearman": float(stats.spearmanr(a, b).statistic),
            "kendall": float(stats.kendalltau(a, b).statistic),
        }

    measured = np.asarray(measured, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    out = {"n": float(len(measured)), **figures(measured, predicted)}
    size = max(3, math.ceil(len(measured) * top))
    best = np.argsort(-measured, kind="stable")[:size]
    out.update(
        {f"top_{key}": value for key, value in figures(measured[best], predicted[best]).items()}
    )
    return out


def seed_noise(table: BenchTable, hashes: Sequence[str] | None = None) -> dict[str, Any]:
    """The figures of :func:`quality` between the first two seeds of twice-trained networks.

    ``hashes`` limits them to those networks (a held-out split). Returns the seeds
    compared and the figures of the second seed's last-epoch accuracy "predicting" the
    first's; empty when fewer than 3 networks were trained twice.
    """
    wanted = None if hashes is None else set(hashes)
    pairs: list[tuple[float, float]] = []
    seeds: tuple[int, int] | None = None
    for arch_hash, rows in table.by_hash.items():
        if len(rows) < 2 or (wanted is not None and arch_hash not in wanted):
            continue
        first, second = rows[0], rows[1]
        seeds = seeds or (first.seed, second.seed)
        pairs.append((first.accuracy(), second.accuracy()))
    if len(pairs) < 3 or seeds is None:
        return {}
    a = np.asarray([p[0] for p in pairs])
    b = np.asarray([p[1] for p in pairs])
    return {
        "seeds": list(seeds),
        "networks": len(pairs),
        "mean_abs_difference": float(np.mean(np.abs(a - b))),
        # one seed's noise: the difference of two has twice its variance
        "seed_std": float(np.std(a - b, ddof=1) / math.sqrt(2)),
        **quality(a, b),
    }


def make_model(family: str, seed: int) -> Any:
    """An unfitted regressor of ``family`` (:data:`FAMILIES`), seeded.

    Raises:
        ConfigError: an unknown family, or one whose library is not installed (with
            the pip command).
    """
    if family == "hgb":
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(
            max_iter=300, learning_rate=0.05, min_samples_leaf=10, random_state=seed
        )
    if family == "lightgbm":
        try:
            import lightgbm
        except ImportError:
            raise ConfigError(
                "model family 'lightgbm' needs LightGBM; run: pip install 'nasframe[surrogate]'"
            ) from None
        return lightgbm.LGBMRegressor(
            n_estimators=300,
            learning_rate=0.05,
            num_leaves=31,
            min_child_samples=10,
            random_state=seed,
            n_jobs=1,
            verbose=-1,
        )
    raise ConfigError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")


@dataclass
class Surrogate:
    """Fitted trees of a table's targets, and the card that says what they are.

    Attributes:
        encoding: the network features the trees read.
        forest: the trees of every target (:attr:`targets`, in that order).
        card: space, depth, dataset, estimator, family, split, figures (see the module).
        models: after a fit, the library's fitted models by target (not saved).
        held_out: after a fit, the held-out networks' hashes, NSCs, measured and
            predicted last-epoch accuracy (saved as ``held_out.csv``).
    """

    encoding: PathEncoding
    forest: Forest
    card: dict[str, Any] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    held_out: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        return int(self.card["epochs"])

    @property
    def targets(self) -> list[str]:
        """The targets, in the forest's order: ``val_1 .. val_E``, ``test``, the seconds."""
        return [*(f"val_{e}" for e in range(1, self.epochs + 1)), "test", *_LOG_TARGETS]

    def predict(self, networks: Sequence[NSC]) -> dict[str, np.ndarray]:
        """Every target for ``networks``: accuracies clipped to [0, 1], seconds > 0."""
        if not networks:
            return {key: np.zeros(0) for key in self.targets}
        values = self.forest.predict(self.encoding.transform(networks))
        return {
            key: np.exp(values[:, i]) if key in _LOG_TARGETS else np.clip(values[:, i], 0, 1)
            for i, key in enumerate(self.targets)
        }

    def save(self, folder: Path) -> Path:
        """Write ``surrogate.json``, ``forest.npz`` (and ``held_out.csv``) into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        models_path = folder / MODELS_FILE
        arrays: dict[str, Any] = self.forest.arrays()
        with models_path.open("wb") as out:
            np.savez_compressed(out, **arrays)
        digest = hashlib.sha256(models_path.read_bytes()).hexdigest()
        card = {**self.card, "encoding": self.encoding.to_json(), "models_sha256": digest}
        card["models_bytes"] = models_path.stat().st_size
        card["trees"] = len(self.forest.target)
        if self.held_out:
            lines = ["arch_hash,nsc,measured,predicted"]
            lines += [
                f"{h},{n},{m:.6g},{q:.6g}"
                for h, n, m, q in zip(
                    self.held_out["hashes"],
                    self.held_out["nsc"],
                    self.held_out["measured"],
                    self.held_out["predicted"],
                    strict=True,
                )
            ]
            (folder / HELD_OUT_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
        (folder / CARD_FILE).write_text(
            json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        self.card = card
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Surrogate:
        """Read a surrogate folder written by :meth:`save`.

        Raises:
            ConfigError: no surrogate there, its card is unreadable, or the model file
                does not match the card's checksum.
        """
        folder = Path(folder)
        card_path = folder / CARD_FILE
        models_path = folder / MODELS_FILE
        if not card_path.exists() or not models_path.exists():
            raise ConfigError(f"{folder}: no surrogate there (need {CARD_FILE} and {MODELS_FILE})")
        try:
            card = json.loads(card_path.read_text(encoding="utf-8"))
            encoding = PathEncoding.from_json(card["encoding"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{card_path}: not a readable surrogate card ({exc})") from None
        data = models_path.read_bytes()
        if hashlib.sha256(data).hexdigest() != card.get("models_sha256"):
            raise ConfigError(
                f"{models_path}: checksum does not match {card_path} (changed or damaged); "
                "fit the surrogate again"
            )
        with np.load(models_path, allow_pickle=False) as arrays:
            forest = Forest.from_arrays(arrays)
        return cls(encoding, forest, card)


def fit_surrogate(
    table: BenchTable,
    *,
    family: str = "hgb",
    train_fraction: float = 0.8,
    seed: int = 0,
    max_paths: int = 256,
) -> Surrogate:
    """Fit a surrogate of ``family`` on a seeded ``train_fraction`` of ``table``'s networks.

    The card holds the held-out figures (:func:`quality` of the last epoch's accuracy,
    the test accuracy and the seconds), the seed noise of the held-out networks trained
    twice (:func:`seed_noise`), and the surrogate's own figures on those networks
    against their second seed, the like-for-like comparison with the noise.

    Raises:
        ConfigError: the family is unknown or not installed, the fraction is out of
            range, or the table has too few networks (at least 10) or no curves.
    """
    targets = table_targets(table)
    if len(targets.hashes) < 10:
        raise ConfigError(f"{table.source}: {len(targets.hashes)} networks; a fit needs >= 10")
    make_model(family, seed)  # an unknown or missing family fails before any work
    train, held = split_networks(len(targets.hashes), train_fraction, seed)
    started = time.perf_counter()
    encoding = PathEncoding.fit([targets.networks[i] for i in train], max_paths=max_paths)
    features = encoding.transform(targets.networks)
    models: dict[str, Any] = {}
    for key, values in targets.values.items():
        model = make_model(family, seed)
        goal = np.log(np.maximum(values, 1e-3)) if key in _LOG_TARGETS else values
        model.fit(features[train], goal[train])
        models[key] = model
    forest = Forest.from_models([models[key] for key in targets.values])
    fit_seconds = time.perf_counter() - started
    build = table.build
    card: dict[str, Any] = {
        "format": 1,
        "family": family,
        "space": build.get("space"),
        "depth": build.get("depth"),
        "dataset": build.get("dataset"),
        "dataset_component": build.get("dataset_component"),
        "estimator": build.get("estimator"),
        "estimator_component": build.get("estimator_component"),
        "input_shape": build.get("input_shape"),
        "num_classes": build.get("num_classes"),
        "sampled": bool(build.get("sampling")),
        "table": {
            "source": str(table.source),
            "sha256": build.get("sha256"),
            "networks": len(table),
            "fitted_networks": len(targets.hashes),  # those not recorded as invalid
        },
        "epochs": targets.epochs,
        "split": {
            "seed": seed,
            "train_fraction": train_fraction,
            "train": len(train),
            "held_out": len(held),
        },
        "max_paths": max_paths,
        "features": len(encoding.vocabulary),
        "fit_seconds": round(fit_seconds, 2),
    }
    surrogate = Surrogate(encoding, forest, card, models)
    held_networks = [targets.networks[i] for i in held]
    predicted = surrogate.predict(held_networks)
    last = f"val_{targets.epochs}"
    card["held_out"] = {
        "accuracy": quality(targets.values[last][held], predicted[last]),
        "test": quality(targets.values["test"][held], predicted["test"]),
        "seconds": quality(targets.values["seconds"][held], predicted["seconds"]),
    }
    # what bench run --surrogate measures regret against, where no table holds the
    # space: the best and the top-1 % threshold of the predicted accuracy of the
    # table's networks (a sampled table's include the search agents' good regions)
    everything = surrogate.predict(targets.networks)[last]
    ranked = np.sort(everything)[::-1]
    card["reference"] = {
        "networks": len(ranked),
        "best": float(ranked[0]),
        "top1": float(ranked[max(1, math.ceil(0.01 * len(ranked))) - 1]),
    }
    held_hashes = [targets.hashes[i] for i in held]
    surrogate.held_out = {
        "hashes": held_hashes,
        "nsc": [str(network) for network in held_networks],
        "measured": [float(v) for v in targets.values[last][held]],
        "predicted": [float(v) for v in predicted[last]],
    }
    noise = seed_noise(table, held_hashes)
    card["seed_noise"] = noise
    if noise:
        card["surrogate_vs_second_seed"] = _against_second_seed(table, held_hashes, surrogate)
    return surrogate


def _against_second_seed(
    table: BenchTable, hashes: Sequence[str], surrogate: Surrogate
) -> dict[str, float]:
    """:func:`quality` of the surrogate against the second seed of twice-trained networks."""
    chosen = [h for h in hashes if len(table.by_hash[h]) >= 2]
    rows = [table.by_hash[h] for h in chosen]
    networks = [NSC.parse(r[0].nsc) if r[0].nsc else NSC() for r in rows]
    predicted = surrogate.predict(networks)[f"val_{surrogate.epochs}"]
    return quality(np.asarray([r[1].accuracy() for r in rows]), predicted)


def _mean(values: Any) -> float:
    items = list(values)
    return float(sum(items) / len(items)) if items else 0.0


def _test(row: TableRow) -> float:
    return 0.0 if (not row.ok or math.isnan(row.test)) else row.test


def tabulate(surrogate: Surrogate, folder: Path, *, plugin_manager: Any = None) -> Path:
    """Write the surrogate's answer for every network of its space as a table folder.

    For a space small enough to enumerate at the surrogate's depth (NSC-Bench v3's):
    ``bench run --table FOLDER`` then compares agents on the surrogate exactly as on the
    measured table, which is how a surrogate is validated where the truth is known.
    Every network gets one row (seed 0): the predicted curve, test accuracy and seconds.

    Raises:
        ConfigError: the surrogate was fitted on a sampled table (its space is too large
            to enumerate).
    """
    from nasframe.bench.networks import enumerate_networks
    from nasframe.bench.table import BUILD_FILE, TABLE_FILE, sha256_of, write_rows

    card = surrogate.card
    if card.get("sampled"):
        raise ConfigError(
            f"the surrogate of {card['table']['source']} was fitted on a sampled table: its "
            "space is too large to tabulate; query it with the surrogate-v1 estimator"
        )
    if plugin_manager is None:
        from nasframe.plugins import get_plugin_manager

        plugin_manager = get_plugin_manager()
    space = plugin_manager.search_spaces().create(card["space"])
    networks = enumerate_networks(space, int(card["depth"]))
    predicted = surrogate.predict(networks)
    epochs = surrogate.epochs
    rows = [
        TableRow(
            arch_hash=network.canonical_hash,
            nsc=str(network),
            depth=len(network),
            seed=0,
            status="ok",
            seconds=round(float(predicted["seconds"][i]), 4),
            train_seconds=round(float(predicted["train_seconds"][i]), 4),
            epochs=epochs,
            curve=tuple(float(predicted[f"val_{e}"][i]) for e in range(1, epochs + 1)),
            test=float(predicted["test"][i]),
        )
        for i, network in enumerate(networks)
    ]
    folder.mkdir(parents=True, exist_ok=True)
    table_path = folder / TABLE_FILE
    write_rows(table_path, rows, epochs)
    build = {
        key: card.get(key)
        for key in ("space", "depth", "dataset", "dataset_component", "input_shape", "num_classes")
    }
    build.update(
        format=1,
        estimator=f"surrogate[{card['family']}] of {card['estimator']}",
        surrogate={"family": card["family"], "table": card["table"], "split": card["split"]},
        seeds=[0],
        networks=len(networks),
        rows=len(rows),
        complete=True,
        sha256=sha256_of(table_path),
    )
    (folder / BUILD_FILE).write_text(
        json.dumps(build, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return folder
