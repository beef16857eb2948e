"""``nasframe search`` on an existing Ray cluster: a head node started by ``ray start``.

This is what a researcher does on a cluster (docs/distributed.md): start Ray on the
nodes, then point ``--ray-address`` at it. Here the head node is a separate ``ray start
--block`` process on this machine; the searches run in their own processes too, so
nothing is shared with a Ray instance of the test process.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import nasframe
from nasframe.results import StepLog

pytest.importorskip("ray")
pytest.importorskip("nasframe.distributed")
pytest.importorskip("nasframe_digits")
pytest.importorskip("nasframe_csv")

pytestmark = pytest.mark.slow

#: Ray 2.5x starts clusters with token authentication unless told otherwise; the head
#: node and its clients must agree, and a throwaway local cluster needs no token.
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _running_head_node(log: Path, *options: str, env: dict[str, str]) -> Iterator[str]:
    """A Ray head node started with ``options`` in its own process, while in the block."""
    port = _free_port()
    command = [
        sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
        f"--port={port}", "--include-dashboard=false", "--disable-usage-stats",
        # Ports Ray would otherwise fix (10001, 52365): free ones, so a Ray cluster the
        # developer already runs on this machine is left alone.
        f"--ray-client-server-port={_free_port()}",
        f"--dashboard-agent-listen-port={_free_port()}",
        *options,
    ]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}
        )
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start did not come up:\n{log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()  # --block: the head node drains and stops its processes
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        # Ray leaves the ended cluster's address in its address file; remove ours.
        stale = _address_file()
        if stale.exists() and stale.read_text().strip().endswith(f":{port}"):
            stale.unlink()


@pytest.fixture(scope="module")
def head_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Ray head node (2 CPUs, 1 GPU) in its own process; its address. Stopped afterwards.

    Ray's resources are logical: the GPU is declared, not detected, so fractional GPU
    placement is tested on a machine without one (nothing here uses CUDA).
    """
    log = tmp_path_factory.mktemp("ray") / "head.log"
    with _running_head_node(log, "--num-cpus=2", "--num-gpus=1", env=RAY_ENV) as address:
        yield address


def _address_file() -> Path:
    """Where Ray keeps the address of the cluster last started on this machine."""
    try:
        from ray._common.utils import get_ray_address_file
    except ImportError:  # Ray before 2.4x
        from ray._private.utils import get_ray_address_file
    return Path(get_ray_address_file(None))


def _search(
    address: str, out: Path, steps: int, *extra: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "nasframe", "search", "--estimator", "proxy",
        "--workers", "2", "--ray-address", address, "--steps", str(steps),
        "--output", str(out), "--seed", "5", "-q", "--set", "run.plots=false", *extra,
    ]  # fmt: skip
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, **RAY_ENV},
        timeout=timeout,
        check=False,
    )


def _records(path: Path) -> list[nasframe.Record]:
    database = nasframe.get_plugin_manager().registry("database").create("csv", path=path)
    try:
        return list(database)
    finally:
        database.close()


def test_search_on_an_existing_cluster_and_resume_there(head_node: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = _search(head_node, out, 30)
    assert first.returncode == 0, first.stderr[-3000:]
    log = (out / "search.log").read_text()
    assert f"evaluating on 2 Ray worker(s) of the cluster at {head_node}, on 1 node(s)" in log
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outcome"] == "completed" and 30 <= summary["steps"] <= 31
    before = _records(out / "experiments.csv")
    assert summary["trainings"] == len(before) > 0

    # The first search leaves the cluster it did not start running: a second one, the
    # same run resumed for more steps, connects again and retrains nothing.
    second = _search(head_node, out, 60)
    assert second.returncode == 0, second.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outcome"] == "completed" and 60 <= summary["steps"] <= 61
    assert summary["resumed_from_step"] >= 30
    rows = StepLog(out / "steps.csv").read()
    assert [r.step for r in rows] == list(range(1, summary["steps"] + 1))
    stored = _records(out / "experiments.csv")
    assert {r.arch_hash for r in before} <= {r.arch_hash for r in stored}
    assert len(stored) == len({r.arch_hash for r in stored})  # none trained twice


def test_two_workers_share_one_gpu_with_fractions(head_node: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = _search(head_node, out, 10, "--set", "ray.num_gpus=0.5")
    assert result.returncode == 0, result.stderr[-3000:]
    log = (out / "search.log").read_text()
    assert "each reserves num_cpus=1, num_gpus=0.5" in log
    assert "GPU ids of the workers: 0, 0" in log  # both on the cluster's one GPU


def test_unreachable_address_is_a_one_line_error_at_once(tmp_path: Path) -> None:
    # Ray itself retries such an address for many minutes; nasframe checks it first.
    nothing = f"127.0.0.1:{_free_port()}"  # no Ray there
    result = _search(nothing, tmp_path / "run", 5, timeout=60)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"error: could not start or reach the Ray cluster at {nothing!r}: nothing answers there"
    )
    assert "'ray status'" in last
    assert "Traceback" not in result.stderr


def test_stale_address_file_does_not_stop_a_local_instance(tmp_path: Path) -> None:
    # A cluster that crashed leaves its address in Ray's address file, and a plain
    # ray.init() then tries to join it; an empty address must start a fresh instance.
    stale = _address_file()
    saved = stale.read_text() if stale.exists() else None
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text(f"127.0.0.1:{_free_port()}")
    try:
        result = _search("", tmp_path / "run", 10, timeout=300)
    finally:
        if saved is None:
            stale.unlink(missing_ok=True)
        else:
            stale.write_text(saved)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (tmp_path / "run" / "search.log").read_text()
    assert "evaluating on 2 Ray worker(s) of a local Ray instance" in log


def test_cluster_with_token_authentication_names_the_setting(tmp_path: Path) -> None:
    # The head node gets its token in the environment (and a HOME of its own, so no
    # token file of the developer's is read or written); the driver runs without token
    # authentication, so the cluster refuses it.
    token = secrets.token_hex(32)
    env = {**RAY_ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "HOME": str(tmp_path)}
    with _running_head_node(tmp_path / "head.log", "--num-cpus=1", env=env) as address:
        result = _search(address, tmp_path / "run", 5, timeout=120)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: could not start or reach the Ray cluster at {address!r}: ")
    assert last.endswith(
        "(a cluster that uses token authentication also needs its token here: "
        "RAY_AUTH_TOKEN or the file ~/.ray/auth_token)"
    )
