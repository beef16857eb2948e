"""Write NSC-Bench tables in the real format with made-up accuracies, for tests and benchmarks.

:func:`write_table` enumerates a real search space and writes ``table.csv.gz`` and
``build.json`` exactly as ``nasframe bench build`` does, so ``table-v1`` and
``nasframe bench run`` are exercised in seconds without training anything.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np

from nasframe.bench.networks import enumerate_networks
from nasframe.bench.table import BUILD_FILE, TABLE_FILE, TableRow, sha256_of, write_rows

__all__ = ["write_table"]


def write_table(
    folder: Path,
    *,
    depth: int = 2,
    seeds: tuple[int, ...] = (0, 1),
    epochs: int = 3,
    dataset: str = "digits",
    space: str = "chained",
    consistent: bool = False,
    drop: tuple[str, ...] = (),
    variant: str = "",
    dataset_settings: dict[str, object] | None = None,
) -> Path:
    """Write a table of every network of ``space`` up to ``depth`` with made-up curves.

    Returns ``folder``.

    The accuracies are a fixed function of the network (its hash) and the seed, so they
    spread like a real table's; with ``consistent`` the test accuracy is the seed-mean
    final validation accuracy plus 0.01, so validation ranks exactly as test does.
    ``drop`` leaves networks (by NSC string) out of the table. ``variant`` names a task:
    tables of different variants rank the networks differently (each network's accuracy
    is drawn from the variant and its hash), as the tables of ``bench transfer``'s tasks
    do; the empty variant is the table written before variants existed.
    ``dataset_settings`` are the dataset's settings (``{"task": "small"}`` for a task of
    ``digit-tasks``), recorded in the build card as ``bench build`` records them.
    """
    from nasframe.plugins import get_plugin_manager

    manager = get_plugin_manager()
    search_space = manager.search_spaces().create(space)
    handler = manager.datasets().create(dataset, **(dataset_settings or {}))
    networks = [n for n in enumerate_networks(search_space, depth) if str(n) not in drop]
    rows = []
    for nsc in networks:
        key = f"{variant}:{nsc.canonical_hash}" if variant else nsc.canonical_hash
        base = np.random.default_rng(zlib.crc32(key.encode())).uniform(0.3, 0.9)
        finals = []
        per_seed = []
        for seed in seeds:
            noise = np.random.default_rng(zlib.crc32(f"{seed}{nsc}".encode())).normal(0, 0.01)
            final = float(np.clip(base + noise, 0.0, 1.0))
            curve = tuple(round(final * (e + 1) / epochs, 6) for e in range(epochs))
            finals.append(curve[-1])
            per_seed.append((seed, curve))
        mean = sum(finals) / len(finals)
        for seed, curve in per_seed:
            test = mean + 0.01 if consistent else curve[-1] - 0.02 + 0.01 * (seed % 2)
            rows.append(
                TableRow(
                    arch_hash=nsc.canonical_hash,
                    nsc=str(nsc),
                    depth=len(nsc),
                    seed=seed,
                    status="ok",
                    params=1000 * (len(nsc) + 1),
                    flops=2000 * (len(nsc) + 1),
                    seconds=2.0 + len(nsc),
                    train_seconds=1.0 + len(nsc),
                    epochs=epochs,
                    curve=curve,
                    test=round(test, 6),
                )
            )
    folder.mkdir(parents=True, exist_ok=True)
    table = folder / TABLE_FILE
    write_rows(table, rows, epochs)
    info = manager.datasets().get(dataset)
    card = {
        "format": 1,
        "space": manager.search_spaces().get(space).name,
        "depth": depth,
        "dataset": handler.identity,
        "dataset_component": {"name": info.name, "settings": dict(dataset_settings or {})},
        "input_shape": list(handler.input_shape),
        "num_classes": handler.num_classes,
        "seeds": list(seeds),
        "networks": len(networks),
        "complete": True,
        "rows": len(rows),
        "sha256": sha256_of(table),
    }
    (folder / BUILD_FILE).write_text(json.dumps(card, indent=2), encoding="utf-8")
    return folder
