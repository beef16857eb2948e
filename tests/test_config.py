"""Typed configuration: precedence, every bad input, plugin sections, template, names."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import PluginSandbox

import nasframe
from nasframe import ConfigError, ConfigSchema, check_components, get_plugin_manager, load_config
from nasframe.config import core_schema, parse_override, template

ROOT = Path(__file__).resolve().parents[1]

#: The hooks this module implements in its test plugins (see test_hooks_meta.py).
EXERCISED_HOOKS = ("nasframe_add_config", "nasframe_register_datasets")

# A plugin that declares its own section, as a dataset plugin does.
PLUGIN_SOURCE = """
from pathlib import Path

import nasframe


@nasframe.hookimpl
def nasframe_add_config(schema):
    section = schema.section("blobs", "Gaussian blobs.")
    section.add("count", int, 100, "examples per class", min=10, max=1000)
    section.add("spread", float, 0.5, "standard deviation", min=0.0)
    section.add("shape", str, "round", "blob shape", choices=("round", "square"))
    section.add("cache", bool, True, "keep in memory")
    section.add("folder", Path, None, "where to keep it", optional=True)


@nasframe.hookimpl
def nasframe_register_datasets(registry):
    registry.add("blobs-v1", dict, section="blobs")
    registry.add("blobs-v2", dict, section="blobs")
"""


def _schema() -> ConfigSchema:
    return core_schema(ConfigSchema())


def _write(tmp_path: Path, text: str, name: str = "run.ini") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path | None = None, overrides: dict[str, dict[str, object]] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides, schema=_schema())
    message = str(info.value)
    assert "\n" not in message, message
    return message


def test_defaults_only() -> None:
    config = load_config(schema=_schema())
    assert config.get("run", "steps") == 200
    assert config.get("RUN", "Steps") == 200  # sections and keys are case-insensitive
    assert config.get("run", "output") == Path("runs/search")
    assert config.get("env", "retry_transient") is False
    assert config.path is None
    assert set(config.sources.values()) == {"default"}
    assert config.section("env")["dataset"] == "digits"


def test_precedence_default_file_override(tmp_path: Path) -> None:
    path = _write(tmp_path, "[run]\nsteps = 50\nseed = 3\n[env]\nmu = 0.25\n")
    config = load_config(path, {"run": {"steps": "7"}}, schema=_schema())
    assert config.get("run", "steps") == 7  # the override beats the file (NASGym: reverse)
    assert config.get("run", "seed") == 3
    assert config.get("env", "mu") == 0.25
    assert config.get("run", "workers") == 1
    assert config.sources[("run", "steps")] == "override"
    assert config.sources[("run", "seed")] == str(path)
    assert config.sources[("run", "workers")] == "default"
    assert config.path == path


def test_with_overrides_keeps_the_original(tmp_path: Path) -> None:
    config = load_config(schema=_schema())
    changed = config.with_overrides({"env": {"max_steps": 3}})
    assert changed.get("env", "max_steps") == 3
    assert changed.sources[("env", "max_steps")] == "override"
    assert config.get("env", "max_steps") == 10


def test_value_conversions(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "[env]\nretry_transient = YES\nsigma = 1\ninvalid_reward = -1.5  ; a comment\n"
        "[run]\noutput = ~/runs\nray_address =\n",
    )
    config = load_config(path, schema=_schema())
    assert config.get("env", "retry_transient") is True
    assert config.get("env", "sigma") == 1.0
    assert config.get("env", "invalid_reward") == -1.5
    assert config.get("run", "output") == Path("~/runs").expanduser()
    assert config.get("run", "ray_address") == ""
    python = load_config(
        overrides={"run": {"steps": 5.0}, "env": {"retry_transient": False}}, schema=_schema()
    )
    assert python.get("run", "steps") == 5


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.ini"
    assert _error(path) == f"{path}: configuration file does not exist"
    assert _error(tmp_path) == f"{tmp_path}: is a folder, not a configuration file"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("steps = 5\n", "File contains no section headers"),
        ("[run]\nsteps\n", "Source contains parsing errors"),
        ("[run]\nsteps = 1\n[run]\nseed = 2\n", "section 'run' already exists"),
        ("[run]\nsteps = 1\nsteps = 2\n", "option 'steps' in section 'run' already exists"),
    ],
    ids=["no-section", "no-equals", "duplicate-section", "duplicate-key"],
)
def test_malformed_ini(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    message = _error(path)
    assert message.startswith(f"{path}: not a valid INI file: ")
    assert expected in message


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.ini"
    path.write_bytes("[run]\n# caf\xe9\n".encode("latin-1"))
    assert _error(path) == f"{path}: not a valid INI file: not UTF-8 text"


def test_unknown_section_with_close_match(tmp_path: Path) -> None:
    path = _write(tmp_path, "[rnu]\nsteps = 5\n")
    known = "(known: bench, database, env, finalize, ray, run)"
    assert _error(path) == f"{path}: unknown section [rnu]; did you mean 'run'? {known}"
    assert _error(overrides={"xyz": {"a": 1}}) == f"unknown section [xyz] {known}"


def test_unknown_key_with_close_match(tmp_path: Path) -> None:
    path = _write(tmp_path, "[run]\nstesp = 5\n")
    message = _error(path)
    assert message.startswith(
        f"{path}: unknown key 'stesp' in section [run]; did you mean 'steps'? (known: agent, "
    )
    assert message.endswith("steps, tasks, tensorboard, top, verbosity, workers)")


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("run", "steps", "ten", "'ten' is not a valid int (int, >= 0)"),
        ("run", "steps", "2.5", "'2.5' is not a valid int (int, >= 0)"),
        ("env", "mu", "half", "'half' is not a valid float (float, >= 0)"),
        ("env", "mu", "nan", "'nan' is not a valid float (float, >= 0)"),
        ("database", "lock_timeout", "inf", "'inf' is not a valid float (float, >= 0)"),
        ("ray", "timeout", "-inf", "'-inf' is not a valid float (float, >= 0)"),
        ("env", "retry_transient", "maybe", "'maybe' is not a valid bool (bool)"),
        ("run", "steps", "-1", "-1 is below the minimum 0"),
        ("run", "workers", "0", "0 is below the minimum 1"),
        ("env", "sigma", "1.5", "1.5 is above the maximum 1"),
        (
            "env",
            "reward",
            "acuracy",
            "'acuracy' is not one of accuracy, blockqnn; did you mean 'accuracy'?",
        ),
        ("run", "steps", "", "'' is not a valid int (int, >= 0)"),
        ("run", "output", "", "'' is not a valid Path (Path)"),
    ],
)
def test_bad_value_names_file_section_key_value_and_valid(
    tmp_path: Path, section: str, key: str, value: str, expected: str
) -> None:
    path = _write(tmp_path, f"[{section}]\n{key} = {value}\n")
    assert _error(path) == f"{path}: [{section}] {key}: {expected}"
    # the same check applies to overrides, which have no file
    assert _error(overrides={section: {key: value}}) == f"[{section}] {key}: {expected}"


def test_python_values_of_the_wrong_type() -> None:
    assert _error(overrides={"run": {"steps": True}}) == (
        "[run] steps: True is not a valid int (int, >= 0)"
    )
    assert _error(overrides={"run": {"steps": 2.5}}) == (
        "[run] steps: 2.5 is not a valid int (int, >= 0)"
    )
    assert _error(overrides={"run": {"steps": None}}) == (
        "[run] steps: a value is required (int, >= 0)"
    )


def test_unknown_section_or_key_on_lookup() -> None:
    config = load_config(schema=_schema())
    with pytest.raises(ConfigError, match=r"^unknown section \[envv\]; did you mean 'env'\?"):
        config.get("envv", "mu")
    with pytest.raises(ConfigError, match=r"^unknown key 'muu' in section \[env\]; did you mean"):
        config.get("env", "muu")


@pytest.mark.parametrize("text", ["run.steps", "steps=5", ".steps=5", "run.=5"])
def test_bad_override_syntax(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_override(text)
    assert str(info.value) == (
        f"override {text!r} must look like section.key=value, e.g. run.steps=50"
    )


def test_good_override_syntax() -> None:
    assert parse_override("run.steps=5") == ("run", "steps", "5")
    assert parse_override("env.dataset = a=b") == ("env", "dataset", " a=b")


def test_key_declared_twice_is_a_programming_error() -> None:
    section = ConfigSchema().section("x")
    section.add("a", int, 1, "a")
    with pytest.raises(ValueError, match=r"config key \[x\] a is declared twice"):
        section.add("A", int, 1, "a again")


def test_plugin_sections_are_declared_and_validated(sandbox: PluginSandbox, tmp_path: Path) -> None:
    sandbox.entry_points(blobs=sandbox.module("blobs", PLUGIN_SOURCE))
    config = load_config()
    assert config.section("blobs") == {
        "count": 100,
        "spread": 0.5,
        "shape": "round",
        "cache": True,
        "folder": None,
    }
    path = _write(tmp_path, "[blobs]\ncount = 5\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: [blobs] count: 5 is below the minimum 10"
    with pytest.raises(ConfigError, match=r"unknown key 'colour' in section \[blobs\]"):
        load_config(overrides={"blobs": {"colour": "red"}})
    with pytest.raises(ConfigError, match=r"'squre' is not one of round, square; did you mean"):
        load_config(overrides={"blobs": {"shape": "squre"}})
    assert load_config(overrides={"blobs": {"folder": ""}}).get("blobs", "folder") is None
    # a manager passed in is used as is: without the plugin the section is unknown
    with pytest.raises(ConfigError, match=r"unknown section \[blobs\]"):
        load_config(path, plugin_manager=get_plugin_manager(autoload=False))


def test_template_documents_every_key_and_loads_to_the_defaults(
    sandbox: PluginSandbox, tmp_path: Path
) -> None:
    sandbox.entry_points(blobs=sandbox.module("blobs", PLUGIN_SOURCE))
    schema = core_schema(ConfigSchema())
    get_plugin_manager().hook.nasframe_add_config(schema=schema)
    text = template(schema)
    for section in schema:
        assert f"[{section.name}]\n# {section.description}\n" in text
        for key in section.keys.values():
            assert f"# {key.description}\n# type: {key.describe()}" in text
    assert "# type: int, >= 10, <= 1000; default: 100\ncount = 100\n" in text
    assert "# type: Path, may be empty; default: (empty)\nfolder =\n" in text
    assert "# type: bool; default: true\ncache = true\n" in text
    loaded = load_config(_write(tmp_path, text), schema=schema)
    assert loaded.values == schema.defaults()


def test_show_output_loads_back_to_the_same_configuration(tmp_path: Path) -> None:
    config = load_config(overrides={"run": {"steps": 3, "output": "out"}}, schema=_schema())
    again = load_config(_write(tmp_path, config.to_ini()), schema=_schema())
    assert again.values == config.values


def test_bundled_config_ini_is_in_sync_with_the_schema() -> None:
    schema = core_schema(ConfigSchema())
    get_plugin_manager(autoload=False, disable=()).hook.nasframe_add_config(schema=schema)
    bundled = (ROOT / "resources" / "config.ini").read_text(encoding="utf-8")
    assert bundled == template(schema), (
        "resources/config.ini is out of date; regenerate it with: "
        "nasframe config template --builtin -o resources/config.ini"
    )


def test_component_names_are_checked_against_the_registries(
    sandbox: PluginSandbox, tmp_path: Path
) -> None:
    sandbox.entry_points(
        blobs=sandbox.module("blobs", PLUGIN_SOURCE),
        broken=sandbox.module("broken", "raise ImportError('no')"),
    )
    manager = get_plugin_manager()
    good = load_config(overrides={"env": {"dataset": "blobs"}}, plugin_manager=manager)
    check_components(good, manager, user_set_only=True)  # digits etc. are defaults: skipped
    check_components(
        good.with_overrides({"env": {"dataset": "blobs-v1"}}), manager, user_set_only=True
    )
    with pytest.raises(ConfigError) as info:
        check_components(good, manager)  # the defaults are checked too
    assert str(info.value).startswith(
        "[env] search_space (default value): unknown search space 'chained' "
        "(available: none registered)"
    )
    path = _write(tmp_path, "[env]\ndataset = blbos\n")
    typo = load_config(path, plugin_manager=manager)
    with pytest.raises(ConfigError) as info:
        check_components(typo, manager, user_set_only=True)
    assert str(info.value) == (
        f"{path}: [env] dataset: unknown dataset 'blbos'; did you mean 'blobs'? "
        "(available: blobs-v1, blobs-v2); plugins that failed to load: broken "
        "(see nasframe plugins)"
    )
    unknown_agent = load_config(overrides={"run": {"agent": "ppo"}}, plugin_manager=manager)
    with pytest.raises(ConfigError, match=r"^\[run\] agent \(override value\): unknown agent"):
        check_components(unknown_agent, manager, user_set_only=True)


def test_load_config_builds_its_own_manager_by_default(sandbox: PluginSandbox) -> None:
    sandbox.entry_points(blobs=sandbox.module("blobs", PLUGIN_SOURCE))
    assert "blobs" in load_config().values
    assert isinstance(load_config().schema, nasframe.ConfigSchema)


def test_component_settings_drop_unset_values() -> None:
    manager = nasframe.get_plugin_manager()
    config = nasframe.load_config(None, {"database": {"fsync": "no"}}, plugin_manager=manager)
    csv = manager.registry("database").get("csv")
    # path is unset (None): left out so the factory's own default applies.
    assert config.component_settings(csv) == {"lock_timeout": 60.0, "fsync": False}
    assert config.component_settings(manager.registry("state_encoder").get("matrix")) == {
        "flatten": False
    }


def test_relative_paths_in_a_file_are_relative_to_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = _schema()
    schema.section("space", "a file-valued str key").add("file", str, None, "", optional=True)
    folder = tmp_path / "conf"
    (folder / "data").mkdir(parents=True)
    (folder / "space.yml").write_text("x: 1\n", encoding="utf-8")
    text = (
        "[run]\noutput = runs/new\nplay = space.yml\n[database]\npath = data\n"
        "[space]\nfile = nasenv\n"
    )
    path = _write(folder, text)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(Path("..") / "conf" / "run.ini", schema=schema)
    assert config.get("database", "path") == Path("../conf/data")  # exists next to the file
    assert config.get("run", "play") == "../conf/space.yml"
    assert config.get("run", "output") == Path("runs/new")  # to create: the current folder
    assert config.get("space", "file") == "nasenv"  # a name, not a path
    # absolute paths and overrides are left as they are
    override = load_config(path, {"database": {"path": "data"}}, schema=schema)
    assert override.get("database", "path") == Path("data")
    absolute = _write(folder, f"[database]\npath = {folder / 'data'}\n", "abs.ini")
    assert load_config(absolute, schema=schema).get("database", "path") == folder / "data"


def test_config_show_names_a_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from nasframe.cli import main

    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path, "[search_space]\nfile = resources/nasenv.yml\n")
    result = CliRunner().invoke(main, ["config", "show", "--config", str(path)])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"error: {path}: [search_space] file = 'resources/nasenv.yml': no such file (a "
        "relative path in a file is relative to that file's folder where it exists there, "
        "else to the current folder)"
    )
    result = CliRunner().invoke(main, ["config", "show", "--set", "run.play=gone.zip"])
    assert result.exit_code == 1
    assert "[run] play (override value) = 'gone.zip': no such file" in result.output
    (tmp_path / "resources").mkdir()
    (tmp_path / "resources" / "nasenv.yml").write_text("x: 1\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["config", "show", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "file = " in result.output


def test_a_value_naming_an_unknown_users_home_is_not_a_traceback(tmp_path: Path) -> None:
    # "~0" looks like a path under user 0's home; no such user: the value is kept as is
    path = tmp_path / "c.ini"
    path.write_text("[a2c]\ndevice = ~nosuchuser0\n", encoding="utf-8")
    try:
        config = load_config(path, plugin_manager=get_plugin_manager())
    except ConfigError as exc:
        assert str(exc).startswith(f"{path}: ")
    else:
        assert config.get("a2c", "device") == "~nosuchuser0"
