"""A search that does not train with TensorFlow never imports it (issue 17, defect 3).

Stable-Baselines3 imports TensorBoard (through ``torch.utils.tensorboard``), and
TensorBoard imports TensorFlow whenever it is installed: seconds of start-up and
TensorFlow's absl/oneDNN lines before the progress bar of a search with the ``proxy``
estimator. Each test runs in a fresh interpreter, where ``sys.modules`` tells the truth.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("nasframe_digits")

#: Lines TensorFlow prints on its first import (absl, oneDNN, the CPU-feature banner).
TF_LINES = ("absl::InitializeLog", "oneDNN", "cpu_feature_guard", "tensorflow/core")

SEARCH = """
import json, sys
from nasframe.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    print(json.dumps({"tensorflow": "tensorflow" in sys.modules,
                      "tensorboard": "tensorboard" in sys.modules}))
"""


def run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=540
    )


def test_search_with_proxy_and_ppo_imports_no_tensorflow(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run(
        SEARCH, "search", "--agent", "ppo", "--estimator", "proxy", "--steps", "12",
        "--output", str(out), "--seed", "0", "--set", "run.plots=false",
        "--set", "run.tensorboard=true", "--set", "ppo.n_steps=4", "--set", "ppo.batch_size=4",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    modules = json.loads(result.stdout.strip().splitlines()[-1])
    # SB3 still imports TensorBoard, and the run writes its scalars; TensorFlow stays out.
    assert modules == {"tensorflow": False, "tensorboard": True}
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert "completed: 12 steps" in result.stdout
    assert not [line for line in result.stderr.splitlines() if any(s in line for s in TF_LINES)]


#: An SB3 agent built from Python: on one env, and on a vector env (what --workers N gives
#: it), whose adapter once imported Stable-Baselines3 before TensorBoard was switched to
#: its TensorFlow stub.
SB3_FROM_PYTHON = {
    "env": """
env = nasframe.make_env(search_space="chained", estimator="proxy", dataset="digits")
agent = nasframe.make_agent("a2c", env, seed=0)
agent.learn(5)
env.close()
""",
    "vector env": """
from nasframe.distributed import NASVectorEnv
envs = [nasframe.make_env(search_space="chained", estimator="proxy", dataset="digits")
        for _ in range(2)]
agent = nasframe.make_agent("ppo", NASVectorEnv(envs), seed=0, n_steps=4, batch_size=4)
agent.learn(8)
agent.close()
""",
}


@pytest.mark.parametrize("case", sorted(SB3_FROM_PYTHON))
def test_sb3_agent_from_python_imports_no_tensorflow(case: str) -> None:
    code = "import json, sys\nimport nasframe\n" + SB3_FROM_PYTHON[case]
    result = run(code + 'print(json.dumps("tensorflow" in sys.modules))\n')
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "false"
    assert not [line for line in result.stderr.splitlines() if any(s in line for s in TF_LINES)]


@pytest.mark.slow
def test_a_keras_search_prints_its_own_line_before_tensorflow(tmp_path: Path) -> None:
    # TF_CPP_MIN_LOG_LEVEL=0 (a user's choice) lets TensorFlow print its start-up lines;
    # stdout and stderr are merged as a terminal shows them.
    import os

    pytest.importorskip("tensorflow")
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [
            sys.executable, "-m", "nasframe", "search", "--estimator", "keras", "--agent",
            "random", "--steps", "2", "--seed", "0", "--output", str(tmp_path / "run"),
            "--set", "run.plots=false", "--set", "keras.epochs=1",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment,
        timeout=540,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines[0].startswith("starting: "), lines[:5]
    # TensorFlow itself may print its absl and oneDNN lines once per native library it
    # loads (twice in one process with tensorflow-cpu 2.21); what nasframe controls is
    # that one process imports it: every line with a process id names the same one.
    pids = {
        line.split()[2]
        for line in lines
        if line.startswith("I0000 ") and ("oneDNN" in line or "cpu_feature_guard" in line)
    }
    assert len(pids) <= 1, pids
    assert "completed: 2 steps" in result.stdout
