"""The presets in resources/: each loads, names installed components and says what it needs."""

from __future__ import annotations

from pathlib import Path

import pytest

import nasframe
from nasframe.finalize import final_settings, parse_seeds

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted(
    path.name for path in (ROOT / "resources").glob("*.ini") if path.name != "config.ini"
)


def test_the_papers_presets_are_there() -> None:
    for name in (
        "experiment1.ini",
        "experiment2.ini",
        "experiment3.ini",
        "dqn-baseline.ini",
        "random-baseline.ini",
    ):
        assert name in PRESETS


@pytest.mark.parametrize("name", PRESETS)
def test_preset_loads_and_documents_itself(name: str) -> None:
    pytest.importorskip("nasframe_keras")
    path = ROOT / "resources" / name
    manager = nasframe.get_plugin_manager()
    config = nasframe.load_config(path, plugin_manager=manager)
    nasframe.check_components(config, manager)
    head = path.read_text(encoding="utf-8").split("\n[", 1)[0]
    assert "nasframe " in head, "the header shows the command that runs it"
    assert name in (ROOT / "docs" / "presets.md").read_text(encoding="utf-8")
    if str(config.get("env", "dataset")).startswith("metadataset"):
        assert "Needs" in head and "TFRecords" in head
    final_settings(config, manager)  # its [finalize] section fits its estimator
    parse_seeds(config.get("finalize", "seeds"))


def test_experiment_presets_match_the_paper() -> None:
    load = nasframe.load_config
    two = load(ROOT / "resources" / "experiment2.ini")
    assert two.get("run", "tasks") == "aircraft:2000,cu_birds:2000"
    assert two.get("run", "meta_rl") is True and two.get("metadataset", "test") > 0
    assert (two.get("finalize", "top_k"), two.get("finalize", "epochs")) == (2, 100)
    assert parse_seeds(two.get("finalize", "seeds")) == [0, 1, 2, 3, 4]
    three = load(ROOT / "resources" / "experiment3.ini")
    assert three.get("env", "search_space") == "pointer" and three.get("env", "max_steps") == 20
    assert three.get("run", "steps") == 20000 and three.get("keras", "batch_size") == 64
    dqn = load(ROOT / "resources" / "dqn-baseline.ini")
    assert dqn.get("run", "agent") == "dqn" and dqn.get("dqn", "buffer_size") == 6500 // 2
    assert dqn.get("dqn", "exploration_fraction") == 1.0 and dqn.get("dqn", "gamma") == 1.0
    rand = load(ROOT / "resources" / "random-baseline.ini")
    assert rand.get("run", "agent") == "random" and rand.get("run", "seed") == 1024
