"""Search spaces: the YAML loader, the three action modes and their NASGym counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from nasframe_spaces import (
    BUILTIN_FILES,
    AbsoluteSearchSpace,
    ChainedSearchSpace,
    PointerSearchSpace,
    load_space,
    parse_space,
)
from nasframe_spaces.spec import builtin_text

import nasframe
from nasframe import NSC, SearchSpaceError, SearchState

ROOT = Path(__file__).resolve().parents[1]

GOOD = """
nasenv:
  max_nlayers: 4
  encoding: NSC
  layers:
    - convolution: {id: 1, kernel_size: [1, 3], pred1: true, pred2: false}
    - add: {id: 5, kernel_size: null, pred1: true, pred2: true}
    - terminal: {id: 7, kernel_size: null, pred1: false, pred2: false}
"""


# -- counts and labels ------------------------------------------------------------------------
def test_nasgym_action_counts() -> None:
    assert AbsoluteSearchSpace("nasenv").action_space.n == 161  # d^2 + 6d + 1, d = 10
    assert ChainedSearchSpace("chain").action_space.n == 8
    assert PointerSearchSpace("multibranch").action_space.n == 14
    assert ChainedSearchSpace("nasenv").action_space.n == 10  # NASGym's count for resources


def test_defaults_per_mode() -> None:
    assert AbsoluteSearchSpace().action_space.n == 161
    assert ChainedSearchSpace().action_space.n == 8
    assert PointerSearchSpace().action_space.n == 14


def test_chained_labels_follow_nasgym_order() -> None:
    labels = [a.label for a in ChainedSearchSpace("chain").actions()]
    assert labels == [
        "convolution_k-1_pred1-L_pred2-0",
        "convolution_k-3_pred1-L_pred2-0",
        "convolution_k-5_pred1-L_pred2-0",
        "maxpooling_k-2_pred1-L_pred2-0",
        "maxpooling_k-3_pred1-L_pred2-0",
        "avgpooling_k-2_pred1-L_pred2-0",
        "avgpooling_k-3_pred1-L_pred2-0",
        "terminal_k-0_pred1-0_pred2-0",
    ]


def test_pointer_labels_and_kinds() -> None:
    actions = PointerSearchSpace("multibranch").actions()
    assert [a.label for a in actions[7:]] == [
        "add_k-0_pred1-L_pred2-BL",
        "concat_k-0_pred1-L_pred2-BL",
        "terminal_k-0_pred1-0_pred2-0",
        "predshift_p-1_op-U",
        "predshift_p-1_op-D",
        "predshift_p-2_op-U",
        "predshift_p-2_op-D",
    ]
    assert [a.kind for a in actions].count("pointer") == 4
    assert [a.id for a in actions] == list(range(14))


def test_absolute_labels_are_unique_and_complete() -> None:
    actions = AbsoluteSearchSpace("nasenv").actions()
    labels = [a.label for a in actions]
    assert len(set(labels)) == 161
    assert sum(label.startswith("add_") for label in labels) == 45
    assert "concat_k-0_pred1-9_pred2-8" in labels
    assert labels[-1] == "terminal_k-0_pred1-0_pred2-0"


# -- transitions ---------------------------------------------------------------------------
def test_chained_builds_a_chain_and_terminal_adds_a_row() -> None:
    space = ChainedSearchSpace("chain")
    state = space.reset()
    for action in (1, 3, 0):
        state = space.apply(state, action).state
    assert str(state.nsc) == "1,1,3,0,0;2,2,2,1,0;3,1,1,2,0"
    done = space.apply(state, 7)
    assert done.added == (4, 7, 0, 0, 0)
    assert done.state.nsc.terminated
    # after the terminal nothing is added any more
    assert space.apply(done.state, 0).state is done.state


def test_chained_merge_reads_the_last_layer_twice() -> None:
    space = ChainedSearchSpace("nasenv")
    add = next(a.id for a in space.actions() if a.label.startswith("add"))
    state = space.apply(space.reset(), add).state
    assert str(state.nsc) == "1,5,0,0,0"  # merge of the input: pred2 is 0 on the empty net
    state = space.apply(space.apply(state, 1).state, add).state
    assert state.nsc.rows[-1][3:] == (2, 2)


def test_full_state_adds_nothing() -> None:
    space = ChainedSearchSpace("chain")
    state = space.reset()
    for _ in range(10):
        state = space.apply(state, 0).state
    assert len(state.nsc) == 10
    transition = space.apply(state, 1)
    assert transition.state is state and transition.added is None


def test_pointer_moves_follow_nasgym() -> None:
    space = PointerSearchSpace("multibranch")
    p1_up, p1_down, p2_up, p2_down = 10, 11, 12, 13
    state = space.reset()
    # U from 0 is immediately out of range, as in NASGym
    assert space.apply(state, p1_up).out_of_bounds
    # D on the empty network: L + shift = -1 < 0
    assert space.apply(state, p1_down).out_of_bounds
    for _ in range(3):
        state = space.apply(state, 1).state  # three conv k3
    moved = space.apply(state, p1_down)
    assert not moved.out_of_bounds and moved.state.pointers == (-1, 0)
    assert moved.state.nsc is state.nsc
    state = space.apply(moved.state, p2_down).state
    state = space.apply(state, p2_down).state
    assert state.pointers == (-1, -2)
    concat = space.apply(state, 8)
    assert concat.added == (4, 6, 0, 2, 1)  # pred1 = 3 - 1, pred2 = 3 - 2
    # the offsets persist after adding a layer (NASGym): L is now 4
    assert concat.state.pointers == (-1, -2)
    conv = space.apply(concat.state, 0)
    assert conv.added == (5, 1, 1, 3, 0)
    assert space.apply(concat.state, p2_up).state.pointers == (-1, -1)
    deep = SearchState(concat.state.nsc, (-4, 0))
    assert space.apply(deep, p1_down).out_of_bounds


def test_absolute_predecessors_and_out_of_range() -> None:
    space = AbsoluteSearchSpace("nasenv")
    label = {a.label: a.id for a in space.actions()}
    state = space.apply(space.reset(), label["convolution_k-3_pred1-0_pred2-0"]).state
    state = space.apply(state, label["maxpooling_k-3_pred1-1_pred2-0"]).state
    state = space.apply(state, label["add_k-0_pred1-2_pred2-1"]).state
    assert str(state.nsc) == "1,1,3,0,0;2,2,3,1,0;3,5,0,2,1"
    # naming a layer that does not exist yet ends the episode without adding it
    missing = space.apply(state, label["convolution_k-1_pred1-7_pred2-0"])
    assert missing.out_of_bounds and missing.state is state


@pytest.mark.parametrize("space_cls", [AbsoluteSearchSpace, ChainedSearchSpace, PointerSearchSpace])
@pytest.mark.parametrize(
    ("action", "message"),
    [
        (-1, "action -1 is out of range; valid actions are 0 .. "),
        (10_000, "action 10000 is out of range; valid actions are 0 .. "),
        (1.0, "action 1.0 of type float is not an integer"),
        ("1", "action '1' of type str is not an integer"),
        (True, "action True of type bool is not an integer"),
        (None, "action None of type NoneType is not an integer"),
    ],
)
def test_bad_actions_raise_one_line(space_cls: type, action: object, message: str) -> None:
    space = space_cls()
    state = space.reset()
    with pytest.raises(SearchSpaceError) as info:
        space.apply(state, action)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_numpy_actions_are_accepted() -> None:
    space = ChainedSearchSpace()
    for action in (np.int64(1), np.array(1), np.array([1]), np.int32(1)):
        assert space.apply(space.reset(), action).added == (1, 1, 3, 0, 0)
    with pytest.raises(SearchSpaceError, match="not an integer"):
        space.apply(space.reset(), np.array([1.0]))


def test_check_nsc_against_space() -> None:
    space = ChainedSearchSpace("chain")
    space.check(NSC.parse("1,1,3,0,0;2,2,2,1,0"))
    with pytest.raises(nasframe.NSCError, match="kernel 1 is not allowed for maxpooling"):
        space.check(NSC.parse("1,2,1,0,0"))


# -- the YAML files ----------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BUILTIN_FILES))
def test_resources_match_package_data(name: str) -> None:
    shipped = (ROOT / "resources" / BUILTIN_FILES[name]).read_text(encoding="utf-8")
    assert shipped == builtin_text(name)
    assert load_space(ROOT / "resources" / BUILTIN_FILES[name]).max_depth == 10


def test_parse_reads_every_field(tmp_path: Path) -> None:
    path = tmp_path / "mine.yml"
    path.write_text(GOOD, encoding="utf-8")
    spec = load_space(path)
    assert spec.name == "Unknown NAS Configuration"
    assert spec.max_depth == 4
    assert [layer.name for layer in spec.layers] == ["convolution", "add", "terminal"]
    assert spec.layers[0].kernels == (1, 3)
    space = AbsoluteSearchSpace(path)
    # conv: 2 kernels x 4 pred1; add: 4*3/2 pairs; terminal: 1
    assert space.action_space.n == 8 + 6 + 1


def _replace(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nasenv: [1, 2", "<string>: not valid YAML at line"),
        (
            "- 1\n- 2\n",
            "<string>: a search space must be a mapping with the top key 'nasenv', got list",
        ),
        ("42", "<string>: a search space must be a mapping with the top key 'nasenv', got int"),
        ("other: {}\n", "<string>: missing the top key 'nasenv'"),
        ("nasenv: 3\n", "<string>: 'nasenv' must be a mapping, got int"),
        (
            _replace("  max_nlayers: 4\n", ""),
            "<string>: missing the required key 'nasenv.max_nlayers'",
        ),
        (_replace("  encoding: NSC\n", ""), "<string>: missing the required key 'nasenv.encoding'"),
        (
            _replace("max_nlayers: 4", "max_nlayers: 0"),
            "<string>: 'max_nlayers' must be between 1 and 100, got 0",
        ),
        (
            _replace("max_nlayers: 4", "max_nlayers: -3"),
            "<string>: 'max_nlayers' must be between 1 and 100, got -3",
        ),
        (  # a typo that would exhaust memory in the encoders (issue 17)
            _replace("max_nlayers: 4", "max_nlayers: 1000000"),
            "<string>: 'max_nlayers' must be between 1 and 100, got 1000000",
        ),
        (
            _replace("max_nlayers: 4", "max_nlayers: four"),
            "<string>: 'max_nlayers' must be an integer >= 1, got 'four'",
        ),
        (_replace("encoding: NSC", "encoding: DAG"), "<string>: 'encoding' must be 'NSC'"),
        (
            _replace("max_nlayers", "max_nlayer"),
            "<string>: unknown key 'max_nlayer' under 'nasenv'",
        ),
        (
            _replace("- convolution:", "- convolutoin:"),
            "<string>: layer 1: unknown layer type 'convolutoin'; did you mean 'convolution'?",
        ),
        (
            _replace("kernel_size: [1, 3]", "kernel_size: [1, -3]"),
            "<string>: layer 'convolution': kernel size -3 must be an integer from 1 to 99",
        ),
        (
            _replace("kernel_size: [1, 3]", "kernel_size: [1, 3000000000]"),
            "<string>: layer 'convolution': kernel size 3000000000 must be an integer from 1 to 99",
        ),
        (
            _replace("kernel_size: [1, 3]", "kernel_size: [1, 2.5]"),
            "<string>: layer 'convolution': kernel size 2.5 is not an integer",
        ),
        (
            _replace("kernel_size: [1, 3]", "kernel_size: [a]"),
            "<string>: layer 'convolution': kernel size 'a' is not an integer",
        ),
        (
            _replace("kernel_size: [1, 3]", "kernel_size: null"),
            "<string>: layer 'convolution': 'kernel_size' must be a non-empty list",
        ),
        (
            _replace("{id: 1, kernel_size: [1, 3], ", "{kernel_size: [1, 3], "),
            "<string>: layer 'convolution': missing the required key 'id'",
        ),
        (
            _replace("pred1: true, pred2: true", "pred1: true, pred2: false"),
            "<string>: layer 'add': pred1=true, pred2=false does not fit a add layer",
        ),
        (
            _replace("pred1: true, pred2: true", "pred1: true, pred2: yes please"),
            "<string>: layer 'add': 'pred2' must be true or false, got 'yes please'",
        ),
        (
            _replace("id: 5, kernel_size: null", "id: 5, kernel_size: [3]"),
            "<string>: layer 'add': 'kernel_size' must be null for a layer without a kernel",
        ),
        (_replace("  layers:\n", "  layers: []\n  old:\n"), "<string>: unknown key 'old'"),
        (
            "nasenv:\n  max_nlayers: 3\n  encoding: NSC\n  layers: []\n",
            "<string>: 'layers' must be a non-empty list",
        ),
        (
            GOOD + "    - add: {id: 5, kernel_size: null, pred1: true, pred2: true}\n",
            "<string>: layer 'add' is listed twice",
        ),
        (
            _replace("- terminal: {", "- terminal: 3\n    - x: {"),
            "<string>: layer 'terminal': must map to",
        ),
    ],
)
def test_bad_yaml_raises_one_line(text: str, message: str) -> None:
    with pytest.raises(SearchSpaceError) as info:
        parse_space(text)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_bad_files_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(SearchSpaceError, match="search space file 'chian' does not exist; did you"):
        load_space("chian")
    path = tmp_path / "broken.yml"
    path.write_text("nasenv: [", encoding="utf-8")
    with pytest.raises(SearchSpaceError, match=f"^{path}: not valid YAML"):
        ChainedSearchSpace(path)
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(SearchSpaceError, match="cannot read the search space file"):
        load_space(path)


def test_spaces_are_registered_with_their_config_section(
    plugin_manager: nasframe.PluginManager,
) -> None:
    registry = plugin_manager.registry("search_space")
    for name, count in (("absolute", 161), ("chained", 8), ("pointer", 14)):
        info = registry.get(name)
        assert info.name == f"{name}-v1" and info.section == "search_space"
        assert registry.create(name).action_space.n == count
    config = nasframe.load_config(
        overrides={"search_space": {"file": "nasenv"}}, plugin_manager=plugin_manager
    )
    assert config.get("search_space", "file") == "nasenv"
    assert config.get("state_encoder", "flatten") is False


# -- the command ---------------------------------------------------------------------------
def test_cli_spaces_show_and_list(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from nasframe.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["spaces", "show", "--space", "pointer"])
    assert result.exit_code == 0, result.output
    assert "pointer-v1 from built-in 'multibranch': 14 actions, depth 10" in result.output
    assert "predshift_p-2_op-D" in result.output
    result = runner.invoke(main, ["spaces", "show"])  # [env] search_space: chained
    assert "chained-v1 from built-in 'chain': 8 actions" in result.output
    path = tmp_path / "mine.yml"
    path.write_text(GOOD, encoding="utf-8")
    result = runner.invoke(main, ["spaces", "show", "--space", "absolute", "--file", str(path)])
    assert result.exit_code == 0 and "15 actions, depth 4" in result.output
    result = runner.invoke(main, ["spaces", "list"])
    assert result.exit_code == 0 and "absolute-v1" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--file", "chian"], "error: search space file 'chian' does not exist; did you mean"),
        (["--space", "chaned"], "error: unknown search space 'chaned'; did you mean"),
    ],
)
def test_cli_spaces_show_errors_are_one_line(args: list[str], message: str) -> None:
    from click.testing import CliRunner

    from nasframe.cli import main

    result = CliRunner().invoke(main, ["spaces", "show", *args])
    assert result.exit_code == 1
    assert result.output.startswith(message) and result.output.count("\n") == 1
