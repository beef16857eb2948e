"""Parallel evaluation on a local Ray instance (2 CPUs), started once for the module.

The estimators here are real components: they score an architecture deterministically
from its canonical hash, burn CPU or sleep, and append one line per evaluation to a log
file, so the tests count trainings across worker processes.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import nasframe
from nasframe import (
    NSC,
    ArrayDataset,
    CacheKey,
    ConfigError,
    DatasetHandler,
    Evaluation,
    ExperimentDB,
    NasframeError,
    PerformanceEstimator,
    Record,
    RegistryError,
    Status,
    load_config,
)
from nasframe.distributed import (
    ComponentSpec,
    NASVectorEnv,
    RayEvaluator,
    connect_ray,
    make_parallel_env,
    to_sb3,
)
from nasframe.evaluation import Evaluator

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow

#: The test process; shipped by value to the workers, which have other pids.
_DRIVER_PID = os.getpid()


class LoggingEstimator(PerformanceEstimator):
    """Scores by hash; logs ``pid start|end nsc`` lines; may sleep or kill its process.

    Args:
        log: file that gets one ``start`` and one ``end`` line per evaluation.
        sleep: seconds each evaluation takes.
        crash_on: NSC strings whose evaluation kills the worker process (``os._exit``).
        crash_once: kill only the first time (a marker file beside ``log`` remembers).
        hang_on: NSC strings whose evaluation hangs (sleeps ten minutes).
    """

    name = "logging"
    version = "1"

    def __init__(
        self,
        log: Path,
        *,
        sleep: float = 0.0,
        crash_on: tuple[str, ...] = (),
        crash_once: bool = True,
        hang_on: tuple[str, ...] = (),
    ) -> None:
        self.log = Path(log)
        self.sleep = sleep
        self.crash_on = crash_on
        self.crash_once = crash_once
        self.hang_on = hang_on

    def fingerprint(self) -> str:
        return nasframe.fingerprint_of(self.name, self.version, {})

    def _write(self, text: str) -> None:
        with self.log.open("a") as handle:
            handle.write(f"{os.getpid()} {text}\n")

    def evaluate(
        self, architecture: NSC, dataset: DatasetHandler, *, seed: int | None = None
    ) -> Evaluation:
        self._write(f"start {architecture}")
        self._write(f"threads {os.environ.get('TF_NUM_INTRAOP_THREADS')}")
        self._write(f"tf-log-level {os.environ.get('TF_CPP_MIN_LOG_LEVEL')}")
        self._write(f"task {dataset.task}")
        if str(architecture) in self.crash_on:
            marker = self.log.with_suffix(f".crashed-{architecture.canonical_hash[:12]}")
            if not (self.crash_once and marker.exists()):
                marker.touch()
                os._exit(3)
        time.sleep(600 if str(architecture) in self.hang_on else self.sleep)
        digest = hashlib.sha256(f"{architecture.canonical_hash}/{seed}".encode()).digest()
        self._write(f"end {architecture}")
        return Evaluation(
            accuracy=digest[0] / 255, params=len(architecture), seconds=self.sleep, epochs=1
        )


class DictDB(ExperimentDB):
    """An in-memory experiment database (one process)."""

    name = "dict"

    def __init__(self) -> None:
        self.records: dict[CacheKey, Record] = {}
        self.puts = 0

    def get(self, key: CacheKey) -> Record | None:
        return self.records.get(key)

    def put(self, record: Record) -> None:
        self.puts += 1
        self.records.setdefault(record.key, record)

    def __iter__(self) -> Iterator[Record]:
        return iter(list(self.records.values()))


class Observer:
    """A plugin that records every ``nasframe_evaluation_stored`` and its thread."""

    def __init__(self) -> None:
        self.stored: list[tuple[Record, int]] = []

    @nasframe.hookimpl
    def nasframe_evaluation_stored(self, record: Record) -> None:
        self.stored.append((record, threading.get_ident()))


class TwoTasks(ArrayDataset):
    """The tiny dataset under two task names (a meta-dataset in miniature)."""

    def __init__(self) -> None:
        tiny = _dataset()
        super().__init__(
            "two", {split: tiny.arrays(split) for split in ("train", "validation", "test")}
        )
        self._task = "a"

    @property
    def tasks(self) -> tuple[str, ...]:
        return ("a", "b")

    @property
    def task(self) -> str:
        return self._task

    def select_task(self, task: str) -> None:
        super().select_task(task)
        self._task = task

    @property
    def identity(self) -> str:
        return f"two/{self._task}"


def _dataset() -> ArrayDataset:
    rng = np.random.default_rng(0)
    return ArrayDataset.from_arrays(
        "tiny", rng.random((30, 8, 8, 1)), rng.integers(0, 3, 30), num_classes=3
    )


def _networks(n: int) -> list[NSC]:
    """``n`` different chained networks: conv/pool layers of several kernels."""
    choices = [(1, 1), (1, 3), (1, 5), (2, 2), (3, 2), (2, 3)]
    networks = []
    for i in range(n):
        a, b = choices[i % len(choices)], choices[(i // len(choices)) % len(choices)]
        networks.append(NSC.parse(f"1,{a[0]},{a[1]},0,0;2,{b[0]},{b[1]},1,0;3,7,0,0,0"))
    return networks


def _log_lines(log: Path, kind: str) -> list[str]:
    if not log.exists():
        return []
    return [
        line.split(" ", 2)[2] for line in log.read_text().splitlines() if line.split()[1] == kind
    ]


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    # Test estimators live in this module, which workers cannot import: ship by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    started = connect_ray(num_cpus=2)
    yield
    if started:
        ray.shutdown()


def test_settings_are_checked_before_ray_starts(tmp_path: Path) -> None:
    est, data, db = LoggingEstimator(tmp_path / "log"), _dataset(), DictDB()
    cases = {
        "workers=0 is not valid; need an integer >= 1": {"workers": 0},
        "num_cpus=0 per evaluation is not valid; need a number > 0": {"num_cpus": 0},
        "num_gpus=-1 per evaluation is not valid": {"num_gpus": -1},
        "num_gpus=1.5 is not valid; above 1 it must be a whole number": {"num_gpus": 1.5},
        "max_retries=-2 is not valid; need an integer >= 0": {"max_retries": -2},
        "timeout=0 is not valid; need seconds > 0 or None": {"timeout": 0},
    }
    for message, settings in cases.items():
        with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
            RayEvaluator(est, data, db, **settings)


def test_unknown_component_spec_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="unknown estimator 'no-such-estimator'"):
        RayEvaluator(ComponentSpec("estimator", "no-such-estimator"), _dataset(), DictDB())


def test_missing_ray_says_which_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(nasframe.PluginError, match=r"pip install 'nasframe\[ray\]'"):
        RayEvaluator(LoggingEstimator(tmp_path / "log"), _dataset(), DictDB())


def test_parallel_gives_the_serial_evaluations(
    ray_cluster: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")  # the driver's choice reaches the workers
    networks = _networks(8)
    requests = networks + networks[:3] + [networks[5]]  # repeats must come from the cache
    serial_db, parallel_db = DictDB(), DictDB()
    serial = Evaluator(LoggingEstimator(tmp_path / "serial"), _dataset(), serial_db, seed=7)
    expected = [outcome.record for outcome in serial.evaluate_many(requests)]
    log = tmp_path / "parallel"
    observer = Observer()
    manager = nasframe.get_plugin_manager(plugins=[("observer", observer)])
    with RayEvaluator(
        LoggingEstimator(log), _dataset(), parallel_db, workers=2, seed=7, plugin_manager=manager
    ) as ev:
        outcomes = ev.evaluate_many(requests[:6]) + ev.evaluate_many(requests[6:])
        assert len({info.pid for info in ev.worker_info()}) == 2
        assert ev.trainings == serial.trainings == 8
        assert ev.hits == serial.hits == 4
    got = [outcome.record for outcome in outcomes]
    assert [(r.key, r.nsc, r.evaluation) for r in got] == [
        (r.key, r.nsc, r.evaluation) for r in expected
    ]
    assert [o.cache_hit for o in outcomes] == [False] * 8 + [True] * 4
    assert set(parallel_db.records) == set(serial_db.records)
    assert parallel_db.puts == 8  # one writer, nothing written twice
    # The hook fired once per stored record, in the calling thread.
    assert [record for record, _ in observer.stored] == got[:8]
    assert {thread for _, thread in observer.stored} == {threading.get_ident()}
    pids = {line.split()[0] for line in log.read_text().splitlines()}
    assert str(os.getpid()) not in pids  # the driver never trains
    assert set(_log_lines(log, "threads")) == {"1"}  # TF limited to the worker's one CPU
    assert set(_log_lines(log, "tf-log-level")) == {"3"}


def test_concurrent_requests_for_one_architecture_train_once(
    ray_cluster: None, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    target, other = _networks(2)
    db = DictDB()
    with RayEvaluator(LoggingEstimator(log, sleep=2.0), _dataset(), db, workers=2) as ev:
        results: list[Record] = []

        def ask() -> None:
            results.append(ev.evaluate(target).record)

        threads = [threading.Thread(target=ask) for _ in range(3)]
        for thread in threads:
            thread.start()
        batch = ev.evaluate_many([target, other, target])
        for thread in threads:
            thread.join()
        assert ev.trainings == 2
        assert ev.joined >= 3  # the other requests waited for the one in flight
    assert _log_lines(log, "start").count(str(target.without_terminal())) == 1
    assert len({id(r) for r in results} | {id(batch[0].record), id(batch[2].record)}) == 1
    assert db.puts == 2
    # The two trainings ran at once, on two processes: both started before either ended.
    kinds = [line.split()[1] for line in log.read_text().splitlines() if " threads " not in line]
    kinds = [kind for kind in kinds if kind in ("start", "end")]
    assert kinds == ["start", "start", "end", "end"]
    assert len({line.split()[0] for line in log.read_text().splitlines()}) == 2


def test_worker_that_exits_is_retried_and_the_search_goes_on(
    ray_cluster: None, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    first, second, third = (n.without_terminal() for n in _networks(3))
    estimator = LoggingEstimator(log, crash_on=(str(second),))
    db = DictDB()
    with RayEvaluator(estimator, _dataset(), db, workers=2, max_retries=2) as ev:
        outcomes = ev.evaluate_many([first, second, third])
        assert [o.evaluation.status for o in outcomes] == [Status.OK] * 3
        assert ev.worker_deaths == 1 and ev.retries == 1
        assert len(ev.worker_info()) == 2  # the dead worker was replaced
        # Still working after the death:
        assert ev.evaluate(_networks(4)[3]).evaluation.ok
    assert _log_lines(log, "start").count(str(second)) == 2
    assert _log_lines(log, "end").count(str(second)) == 1


def test_worker_that_always_dies_is_stored_as_error(ray_cluster: None, tmp_path: Path) -> None:
    log = tmp_path / "log"
    doomed, fine = (n.without_terminal() for n in _networks(2))
    estimator = LoggingEstimator(log, crash_on=(str(doomed),), crash_once=False)
    db = DictDB()
    with RayEvaluator(estimator, _dataset(), db, workers=2, max_retries=1) as ev:
        bad, good = ev.evaluate_many([doomed, fine])
        assert ev.worker_deaths == 2 and ev.retries == 1
        assert ev.evaluate(_networks(3)[2]).evaluation.ok  # the search goes on
    assert bad.evaluation.status is Status.ERROR
    assert "died 2 time(s) evaluating it, more than max_retries=1" in bad.evaluation.message
    assert good.evaluation.ok
    assert db.get(bad.record.key) == bad.record  # stored, so it is not tried again
    assert _log_lines(log, "start").count(str(doomed)) == 2


def test_killed_worker_process_is_retried(ray_cluster: None, tmp_path: Path) -> None:
    log = tmp_path / "log"
    (network,) = (n.without_terminal() for n in _networks(1))
    with RayEvaluator(LoggingEstimator(log, sleep=2.0), _dataset(), DictDB(), workers=1) as ev:
        (victim,) = ev.worker_info()
        result: list[Evaluation] = []
        thread = threading.Thread(target=lambda: result.append(ev.evaluate(network).evaluation))
        thread.start()
        deadline = time.monotonic() + 60
        while not _log_lines(log, "start") and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(victim.pid, signal.SIGKILL)  # mid-evaluation
        thread.join(timeout=120)
        assert ev.retries == 1 and ev.worker_deaths == 1
        assert [info.pid for info in ev.worker_info()] != [victim.pid]
    assert result and result[0].ok
    starts = [line.split()[0] for line in log.read_text().splitlines() if " start " in line]
    assert len(starts) == 2 and starts[0] == str(victim.pid) != starts[1]


def test_worker_that_cannot_build_is_a_plugin_error(ray_cluster: None) -> None:
    class Unbuildable(ComponentSpec):
        def build(self, plugin_manager: object = None) -> object:
            if os.getpid() != _DRIVER_PID:
                raise RuntimeError("no GPU on this node")
            return _dataset()

    # Builds on the driver, fails in the workers: the message names the cause.
    spec = Unbuildable("dataset", "tiny")
    with pytest.raises(nasframe.PluginError, match="could not build its components: Runtime"):
        RayEvaluator(LoggingEstimator(Path(os.devnull)), spec, DictDB(), workers=1)


def test_closed_evaluator_refuses_work(ray_cluster: None, tmp_path: Path) -> None:
    ev = RayEvaluator(LoggingEstimator(tmp_path / "log"), _dataset(), DictDB(), workers=1)
    ev.close()
    ev.close()  # idempotent
    with pytest.raises(NasframeError, match="the Ray evaluator is closed"):
        ev.evaluate(_networks(1)[0])


# -- vector environments -------------------------------------------------------------------


def _actions(env: NASVectorEnv, steps: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    n = env.single_action_space.n
    return [rng.integers(0, n, env.num_envs) for _ in range(steps)]


def _serial_run(actions: list[np.ndarray], num_envs: int, seed: int) -> tuple[list, set]:
    """The reference: ``num_envs`` plain NASEnvs, stepped one after another."""
    envs = [
        nasframe.make_env(estimator="proxy", dataset=_dataset(), seed=seed + i, max_steps=4)
        for i in range(num_envs)
    ]
    shared = envs[0].evaluator
    database = envs[0].database
    for i, env in enumerate(envs):
        env.evaluator = shared
        env.reset(seed=seed + i)
    trace, done = [], [False] * num_envs
    for step_actions in actions:
        for i, (env, action) in enumerate(zip(envs, step_actions, strict=True)):
            if done[i]:
                obs, _ = env.reset()
                trace.append((i, obs.tolist(), 0.0, False, False))
                done[i] = False
                continue
            obs, reward, term, trunc, _ = env.step(int(action))
            trace.append((i, obs.tolist(), float(reward), term, trunc))
            done[i] = term or trunc
    return trace, _evaluations(database)


def _evaluations(database: ExperimentDB) -> set:
    # Wall seconds differ between runs; everything else must agree.
    return {(r.key, r.nsc, replace(r.evaluation, seconds=0.0)) for r in database}


def _vector_run(env: NASVectorEnv, actions: list[np.ndarray], seed: int) -> list:
    env.reset(seed=seed)
    trace = []
    for step_actions in actions:
        obs, rewards, terms, truncs, _ = env.step(step_actions)
        for i in range(env.num_envs):
            trace.append((i, obs[i].tolist(), float(rewards[i]), bool(terms[i]), bool(truncs[i])))
    return trace


def test_in_process_vector_env_matches_serial_envs() -> None:
    env = make_parallel_env(num_envs=3, estimator="proxy", dataset=_dataset(), seed=5, max_steps=4)
    assert env.num_envs == 3 and env.observation_space.shape[0] == 3
    assert all(e.evaluator is env.evaluator for e in env.envs)
    assert not isinstance(env.evaluator, RayEvaluator)  # workers=1: no Ray
    actions = _actions(env, 12, seed=1)
    trace = _vector_run(env, actions, seed=5)
    expected_trace, expected = _serial_run(actions, 3, seed=5)
    assert trace == expected_trace
    assert _evaluations(env.envs[0].database) == expected
    assert env.evaluator.trainings == len(expected)
    env.close()


def test_parallel_env_steps_give_the_serial_evaluations(ray_cluster: None, tmp_path: Path) -> None:
    # Workers from [run]; the configured database is the default CSV file.
    path = tmp_path / "experiments.csv"
    config = load_config(
        None,
        {"run": {"workers": 2}, "database": {"path": path}, "ray": {"max_retries": 1}},
    )
    env = make_parallel_env(
        config=config, estimator="proxy", dataset=_dataset(), seed=5, max_steps=4
    )
    try:
        assert isinstance(env.evaluator, RayEvaluator) and env.num_envs == 2
        # [ray] settings reach the evaluator; the defaults fill the rest.
        assert env.evaluator.max_retries == 1 and env.evaluator.num_cpus == 1.0
        assert env.evaluator.timeout is None
        actions = _actions(env, 14, seed=2)
        trace = _vector_run(env, actions, seed=5)
        expected_trace, expected = _serial_run(actions, 2, seed=5)
        assert trace == expected_trace
        assert _evaluations(env.envs[0].database) == expected
        assert env.evaluator.trainings == len(expected)
        assert len(expected) >= 5
        assert env.envs[0].database.name.startswith("csv") and path.exists()
    finally:
        env.close()
    reopened = nasframe.get_plugin_manager().registry("database").create("csv", path=path)
    assert _evaluations(reopened) == expected  # every record on disk, once


def test_parallel_env_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"\[ray\] num_gpus: -1.0 is below the minimum 0"):
        make_parallel_env(config=load_config(None, {"ray": {"num_gpus": -1}}), estimator="proxy")
    with pytest.raises(ConfigError, match="num_envs=0 is not valid; need an integer >= 1"):
        make_parallel_env(num_envs=0, estimator="proxy", dataset=_dataset())
    with pytest.raises(ConfigError, match="workers=0 is not valid; need an integer >= 1"):
        make_parallel_env(workers=0, estimator="proxy", dataset=_dataset())
    with pytest.raises(RegistryError, match="unknown estimator 'proxxy'; did you mean"):
        make_parallel_env(workers=2, estimator="proxxy", dataset=_dataset())
    env = make_parallel_env(num_envs=2, estimator="proxy", dataset=_dataset())
    with pytest.raises(ConfigError, match="step got 3 actions for 2 envs"):
        env.reset(seed=0)
        env.step([0, 0, 0])
    with pytest.raises(ConfigError, match="reset got 1 seeds for 2 envs"):
        env.reset(seed=[1])


def test_sb3_adapter_resets_in_the_same_step_and_trains() -> None:
    sb3 = pytest.importorskip("stable_baselines3")
    vector_env = make_parallel_env(num_envs=2, estimator="proxy", dataset=_dataset(), max_steps=3)
    venv = to_sb3(vector_env)
    venv.seed(3)
    obs = venv.reset()
    assert obs.shape == (2, *vector_env.single_observation_space.shape)
    ended = []
    for _ in range(3):  # max_steps=3: every episode has ended by the third step
        obs, rewards, dones, infos = venv.step(np.zeros(2, dtype=np.int64))
        assert obs.shape[0] == 2 and rewards.dtype == np.float32
        ended += [info for info, done in zip(infos, dones, strict=True) if done]
    assert len(ended) >= 2
    for info in ended:
        assert "terminal_observation" in info and "TimeLimit.truncated" in info
    assert venv.get_attr("max_steps") == [3, 3]
    assert venv.env_is_wrapped(sb3.common.monitor.Monitor) == [False, False]
    model = sb3.PPO("MlpPolicy", venv, n_steps=8, batch_size=8, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=16)
    assert vector_env.evaluator.trainings > 0
    venv.close()


def test_bad_env_setting_after_ray_started_stops_the_workers(ray_cluster: None) -> None:
    before = ray.available_resources().get("CPU", 0)
    with pytest.raises(ConfigError, match="unknown env setting 'max_stepz'"):
        make_parallel_env(workers=2, estimator="proxy", dataset=_dataset(), max_stepz=3)
    deadline = time.monotonic() + 30  # the killed actors give their CPUs back
    while ray.available_resources().get("CPU", 0) < before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU", 0) >= before


def test_workers_the_cluster_cannot_place_are_a_one_line_error(
    ray_cluster: None, tmp_path: Path
) -> None:
    # The test cluster has no GPU: a worker asking for half of one never starts.
    with pytest.raises(
        NasframeError,
        match=r"only 0 of 1 Ray workers started within 3 s; the cluster may lack "
        r"num_cpus=1, num_gpus=0.5 per worker",
    ):
        RayEvaluator(
            LoggingEstimator(tmp_path / "log"),
            _dataset(),
            DictDB(),
            workers=1,
            num_gpus=0.5,
            start_timeout=3,
        )


def test_task_switch_reaches_the_workers_and_the_cache_key(
    ray_cluster: None, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    network = _networks(1)[0]
    dataset, db = TwoTasks(), DictDB()
    with RayEvaluator(LoggingEstimator(log), dataset, db, workers=1) as ev:
        first = ev.evaluate(network).record
        dataset.select_task("b")  # as NASEnv.reset(options={"task": "b"}) does
        second = ev.evaluate(network).record
        assert ev.trainings == 2 and ev.hits == 0
    assert (first.dataset, first.task) == ("two/a", "a")
    assert (second.dataset, second.task) == ("two/b", "b")
    assert _log_lines(log, "task") == ["a", "b"]


def test_keras_on_digits_trains_on_the_workers_from_specs(ray_cluster: None) -> None:
    pytest.importorskip("tensorflow")
    estimator = ComponentSpec("estimator", "keras", {"epochs": 1})
    dataset = ComponentSpec("dataset", "digits")
    networks = [NSC.parse("1,1,3,0,0;2,2,2,1,0"), NSC.parse("1,1,3,0,0;2,1,3,1,0;3,5,0,1,2")]
    with RayEvaluator(estimator, dataset, DictDB(), workers=2, seed=0) as ev:
        outcomes = ev.evaluate_many(networks)
        assert ev.trainings == 2
    for outcome in outcomes:
        evaluation = outcome.evaluation
        assert evaluation.ok, evaluation.message
        assert 0.2 < evaluation.accuracy <= 1 and evaluation.params > 0
        assert evaluation.epochs == 1
        assert outcome.record.estimator == "keras-v1" and outcome.record.dataset.startswith(
            "digits"
        )


def test_hung_evaluation_is_stopped_and_stored_as_timeout(
    ray_cluster: None, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    slow, fast = (n.without_terminal() for n in _networks(2))
    estimator = LoggingEstimator(log, hang_on=(str(slow),))
    db = DictDB()
    with RayEvaluator(estimator, _dataset(), db, workers=1, timeout=2) as ev:
        (victim,) = ev.worker_info()
        outcome = ev.evaluate(slow)
        assert ev.worker_info() != [victim]  # replaced
        assert ev.evaluate(fast).evaluation.ok  # the search goes on
    evaluation = outcome.evaluation
    assert evaluation.status is Status.TIMEOUT
    assert "no result from the Ray worker within timeout=2 s" in evaluation.message
    assert db.get(outcome.record.key) == outcome.record
    assert _log_lines(log, "start") == [str(slow), str(fast)]  # not retried
