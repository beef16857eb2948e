"""What a fresh plugin manager costs: nasframe's ``get_plugin_manager()`` against bare pluggy.

nasframe builds a new plugin manager for every command, environment and test instead of
keeping an import-time global. This measures the price of that choice, side by side:

* **ours**: ``get_plugin_manager()`` (hook specs, default plugins, entry points,
  ``check()``), then every registry filled and the configuration schema collected --
  what building an environment from a configuration does;
* **baseline**: a bare ``pluggy.PluginManager`` with the same specs and
  ``load_setuptools_entrypoints("nasframe")`` -- the least any pluggy host pays to find
  the same plugins.

Plugin modules are imported once before timing (both sides then find them in
``sys.modules``), so the figures compare the managers, not the imports.

Run: ``python benchmarks/bench_plugin_manager.py [--number N] [--repeat R]``
(``--smoke``: a few managers, seconds; the test suite runs it).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import timeit

import pluggy

from nasframe import get_plugin_manager, hookspecs
from nasframe.config import ConfigSchema, core_schema


def ours() -> None:
    """A fresh nasframe manager with its registries and configuration schema."""
    manager = get_plugin_manager()
    manager.registries()
    manager.hook.nasframe_add_config(schema=core_schema(ConfigSchema()))


def baseline() -> None:
    """A bare pluggy manager loading the same entry points, skipping unimportable ones.

    This is ``load_setuptools_entrypoints`` with one ``try`` added, because pluggy's own
    loader stops at the first plugin that fails to import.
    """
    manager = pluggy.PluginManager("nasframe")
    manager.add_hookspecs(hookspecs)
    for entry_point in importlib.metadata.entry_points(group="nasframe"):
        try:
            plugin = entry_point.load()
        except ImportError:
            continue
        manager.register(plugin, name=entry_point.name)


def main() -> None:
    """Time both, print milliseconds per manager and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=50, help="managers per timing")
    parser.add_argument("--repeat", type=int, default=5, help="timings; the best is kept")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it runs")
    args = parser.parse_args()
    if args.smoke:
        args.number, args.repeat = 2, 1
    ours()  # import every plugin module once, for both sides
    baseline()
    manager = get_plugin_manager()
    loaded = sorted(name for name, s in manager.statuses.items() if s.status == "loaded")
    print(f"plugins loaded: {len(loaded)} ({', '.join(loaded) or 'none'})")
    print(f"components registered: {len(manager.components())}")
    # Alternate the two so that a busy machine slows both alike; keep each one's best.
    best = {"ours": float("inf"), "baseline": float("inf")}
    for _ in range(args.repeat):
        for name, function in (("ours", ours), ("baseline", baseline)):
            best[name] = min(best[name], timeit.timeit(function, number=args.number))
    results = {name: seconds / args.number * 1000 for name, seconds in best.items()}
    for name, milliseconds in results.items():
        print(f"{name:>8}: {milliseconds:.3f} ms per manager")
    print(f"ratio ours/baseline: {results['ours'] / results['baseline']:.2f}x")


if __name__ == "__main__":
    main()
