"""``nasframe evaluate``: train one architecture and print its evaluation."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from nasframe.cli.options import config_options, load_from_options

__all__ = ["evaluate"]


@click.command(short_help="Train one architecture (an NSC string) and print its evaluation.")
@click.argument("nsc")
@click.option("--dataset", "dataset_name", default=None, help="Dataset name (default: [env]).")
@click.option(
    "--estimator", "estimator_name", default=None, help="Estimator name (default: [env])."
)
@click.option("--seed", type=int, default=None, help="Seed (default: [run] seed).")
@config_options
def evaluate(
    nsc: str,
    dataset_name: str | None,
    estimator_name: str | None,
    seed: int | None,
    config_path: Path | None,
    overrides: tuple[str, ...],
) -> None:
    """Train the architecture NSC (e.g. "1,1,3,0,0;2,2,2,1,0") and print its evaluation.

    The dataset and estimator are built through the plugins' registries with the
    settings of their configuration sections (``--config``, ``--set keras.epochs=1``).
    """
    from nasframe import compose
    from nasframe.nsc import NSC
    from nasframe.plugins import get_plugin_manager

    architecture = NSC.parse(nsc)
    manager = get_plugin_manager()
    extra: dict[str, dict[str, Any]] = {
        "env": {"dataset": dataset_name, "estimator": estimator_name},
        "run": {"seed": seed},
    }
    config = load_from_options(config_path, overrides, extra, plugin_manager=manager)
    estimator_info = manager.estimators().get(config.get("env", "estimator"))
    # the one composition path: a cascade's fidelities and a builder named in [keras]
    # come from this configuration too
    dataset = compose.create("dataset", config.get("env", "dataset"), config, manager)
    estimator = compose.create("estimator", estimator_info.name, config, manager)
    run_seed = config.get("run", "seed")
    try:
        result = estimator.evaluate(architecture, dataset, seed=run_seed)
    finally:
        estimator.close()
    click.echo(f"nsc: {architecture}")
    click.echo(f"dataset: {dataset.identity}")
    click.echo(f"estimator: {estimator_info.name} ({estimator.fingerprint()})")
    click.echo(f"seed: {run_seed}")
    for key, value in asdict(result).items():
        if key == "measure" and not value:
            continue  # a validation accuracy: nothing to say
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        if key == "accuracy" and result.measure:
            shown += f" ({result.measure}, not a validation accuracy)"
        click.echo(f"{key}: {shown}")
