"""N environments stepping together over one evaluator: :class:`NASVectorEnv`.

Two ways to step them: *lockstep* (:meth:`NASVectorEnv.step`, :meth:`~NASVectorEnv.step_envs`:
one batched evaluation, waited for) and *pipelined* (:meth:`~NASVectorEnv.submit_envs`,
through a :class:`StepPipeline`: the networks are submitted, the next observations come
back at once and the rewards later, steps finished in order as their evaluations return).
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from nasframe.distributed.components import ComponentSpec
from nasframe.distributed.evaluator import RayEvaluator, check_worker_settings
from nasframe.errors import ConfigError

if TYPE_CHECKING:
    from nasframe.plugins import PluginManager


def step_all(
    envs: Sequence[Any], evaluator: Any, actions: Sequence[Any], active: Sequence[bool]
) -> list[tuple[Any, float, bool, bool, dict[str, Any]] | None]:
    """Step every active env: apply all actions, evaluate all networks at once, finish.

    One batched ``evaluate_many`` is what makes the steps parallel; the results come
    back in env order, so the outcome is the same as stepping the envs one by one.
    """
    plans = [
        env.begin_step(action) if on else None
        for env, action, on in zip(envs, actions, active, strict=True)
    ]
    todo = [i for i, plan in enumerate(plans) if plan is not None and plan.nsc is not None]
    networks = [plan.nsc for plan in plans if plan is not None and plan.nsc is not None]
    outcomes = dict(zip(todo, evaluator.evaluate_many(networks), strict=True))
    return [
        None if plan is None else env.finish_step(plan, outcomes.get(i))
        for i, (env, plan) in enumerate(zip(envs, plans, strict=True))
    ]


@dataclass
class PendingStep:
    """One pipelined step: submitted, its reward known once :attr:`result` is set.

    Attributes:
        slot: the env's index in the vector env.
        plan: the env's :class:`~nasframe.env.StepPlan`.
        future: the evaluation under way (``None``: nothing to evaluate).
        result: ``finish_step``'s ``(obs, reward, terminated, truncated, info)`` once the
            step is finished (in order, by :class:`StepPipeline`), else ``None``.
    """

    slot: int
    plan: Any
    future: Future[Any] | None
    result: tuple[Any, float, bool, bool, dict[str, Any]] | None = None

    @property
    def finished(self) -> bool:
        """Whether the step's outcome is in and the step finished (recorded)."""
        return self.result is not None

    @property
    def reward(self) -> float:
        """The true reward of the step.

        Raises:
            RuntimeError: the step is not finished yet (its reward is still pending).
        """
        if self.result is None:
            raise RuntimeError(f"the reward of env {self.slot}'s step is still pending")
        return float(self.result[1])


class StepPipeline:
    """Pipelined stepping of several envs over one evaluator (deferred rewards).

    :meth:`submit` applies one action per active env (``begin_step``), submits the new
    networks to the evaluator (``evaluator.submit(nsc) -> Future[Outcome]``) and ends the
    steps at once (``defer_step``: the next observation and ``terminated``/``truncated``
    do not depend on the training result). The steps are *finished* (``finish_step``,
    the one place a step is recorded) strictly in the order they were submitted, as
    soon as the evaluations of a step and of every step before it are in: nothing is
    recorded with a placeholder reward, and the step log is the lockstep one whatever
    order the evaluations come back in.

    At most ``max_in_flight`` evaluations are queued or running when a new step is
    submitted (older ones are waited for first), so a stop waits for a bounded amount of
    training.

    Args:
        envs: the environments (``begin_step``, ``defer_step``, ``finish_step``).
        evaluator: their shared evaluator (``submit``, ``wait``, ``settle``, ``in_flight``).
        max_in_flight: see above (default: twice the evaluator's ``workers``, or twice
            the number of envs).

    Raises:
        ConfigError: ``max_in_flight`` < 1.
    """

    def __init__(self, envs: Sequence[Any], evaluator: Any, *, max_in_flight: int | None = None):
        self.envs = list(envs)
        self.evaluator = evaluator
        if max_in_flight is None:
            max_in_flight = 2 * int(getattr(evaluator, "workers", 0) or len(self.envs))
        if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int):
            raise ConfigError(f"max_in_flight={max_in_flight!r} is not valid; need an integer")
        if max_in_flight < 1:
            raise ConfigError(f"max_in_flight={max_in_flight!r} is not valid; need >= 1")
        self.max_in_flight = max_in_flight
        self._queue: collections.deque[PendingStep] = collections.deque()

    @property
    def pending(self) -> int:
        """Steps submitted and not finished yet."""
        return len(self._queue)

    def submit(
        self, actions: Sequence[Any], active: Sequence[bool]
    ) -> list[tuple[Any, bool, bool, dict[str, Any], PendingStep] | None]:
        """Step the active envs without waiting for their evaluations.

        Returns:
            For each active env ``(obs, terminated, truncated, info, pending)`` (``info``
            as ``NASEnv.defer_step`` gives it), ``None`` for the others.
        """
        while self.evaluator.in_flight >= self.max_in_flight and self._wait_one():
            pass
        results: list[tuple[Any, bool, bool, dict[str, Any], PendingStep] | None] = []
        for slot, (env, action, on) in enumerate(zip(self.envs, actions, active, strict=True)):
            if not on:
                results.append(None)
                continue
            plan = env.begin_step(action)
            future = self.evaluator.submit(plan.nsc) if plan.nsc is not None else None
            obs, terminated, truncated, info = env.defer_step(plan)
            step = PendingStep(slot, plan, future)
            self._queue.append(step)
            results.append((obs, terminated, truncated, info, step))
        self.finish_ready()
        return results

    def finish_ready(self) -> int:
        """Finish, in order, the steps whose evaluations (and all before) are in; no wait.

        Returns:
            The steps finished.
        """
        finished = 0
        while self._queue:
            step = self._queue[0]
            if step.future is not None and not step.future.done():
                break
            self._queue.popleft()
            outcome = None
            if step.future is not None:
                outcome = step.future.result()
                self.evaluator.settle(outcome)
            step.result = self.envs[step.slot].finish_step(step.plan, outcome)
            finished += 1
        return finished

    def finish_all(self) -> None:
        """Wait for every submitted step's evaluation and finish them all, in order."""
        while self._queue:
            if not self.finish_ready():
                self._wait_one()

    def _wait_one(self) -> bool:
        """Wait for one more evaluation of the queue; finish what is ready."""
        futures = [s.future for s in self._queue if s.future is not None and not s.future.done()]
        if not futures:
            self.finish_ready()
            return False
        self.evaluator.wait(futures, timeout=None)
        self.finish_ready()
        return True


class NASVectorEnv(gymnasium.vector.VectorEnv):
    """N :class:`~nasframe.NASEnv` stepping together, sharing one evaluator.

    Each ``step`` applies the N actions, evaluates the N new networks with one
    ``evaluator.evaluate_many`` call (in parallel on a :class:`RayEvaluator`, in
    order on an in-process ``Evaluator``) and finishes the N steps. Episodes reset
    automatically in Gymnasium's default ``next-step`` mode: the step after an
    episode ended returns the first observation of the next one (reward 0).

    Args:
        envs: the environments; they should share one search space and encoder.
        evaluator: the evaluator all of them use (default: the first env's); envs
            built with another one are switched to it.
        owned: components the vector env closes after the envs and the evaluator (the
            driver's database of :func:`make_parallel_env`).

    Attributes:
        envs: the environments.
        evaluator: the shared evaluator.
        pipeline: the :class:`StepPipeline` of pipelined stepping
            (:meth:`enable_pipeline`), else ``None``.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP}  # noqa: RUF012

    def __init__(
        self, envs: Sequence[Any], evaluator: Any = None, owned: Sequence[Any] = ()
    ) -> None:
        if not envs:
            raise ConfigError("a vector env needs at least one environment")
        self.envs = list(envs)
        self.evaluator = evaluator if evaluator is not None else self.envs[0].evaluator
        for env in self.envs:
            if env.evaluator is not self.evaluator:
                env.evaluator = self.evaluator
        self._owned = list(owned)
        self.num_envs = len(self.envs)
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = self.envs[0].render_mode
        self._needs_reset = [False] * self.num_envs
        self.pipeline: StepPipeline | None = None

    def enable_pipeline(self, max_in_flight: int | None = None) -> StepPipeline:
        """Step pipelined from now on: :meth:`submit_envs` (see :class:`StepPipeline`).

        For learners that use rewards only after a rollout (on-policy ones); the
        Stable-Baselines3 adapter of the agents plugin steps through it when it is on.
        """
        if self.pipeline is None:
            self.pipeline = StepPipeline(self.envs, self.evaluator, max_in_flight=max_in_flight)
        return self.pipeline

    def submit_envs(
        self, actions: Sequence[Any], active: Sequence[bool]
    ) -> list[tuple[Any, bool, bool, dict[str, Any], PendingStep] | None]:
        """Pipelined :meth:`step_envs`: the next observations now, the rewards pending.

        Raises:
            RuntimeError: pipelining is not enabled (:meth:`enable_pipeline`).
        """
        if self.pipeline is None:
            raise RuntimeError("submit_envs needs enable_pipeline() first")
        return self.pipeline.submit(actions, active)

    def finish_pending(self) -> None:
        """Wait for every pipelined step and finish (record) them all; no-op in lockstep."""
        if self.pipeline is not None:
            self.pipeline.finish_all()

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """Reset every env; an integer ``seed`` seeds env ``i`` with ``seed + i``."""
        if seed is None or isinstance(seed, int):
            seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ConfigError(f"reset got {len(seeds)} seeds for {self.num_envs} envs")
        observations: list[Any] = []
        infos: dict[str, Any] = {}
        for i, (env, env_seed) in enumerate(zip(self.envs, seeds, strict=True)):
            obs, info = env.reset(seed=env_seed, options=options)
            observations.append(obs)
            infos = self._add_info(infos, info, i)
        self._needs_reset = [False] * self.num_envs
        return np.stack(observations), infos

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step all envs with one batched evaluation (see the class docs)."""
        actions = list(actions)
        if len(actions) != self.num_envs:
            raise ConfigError(f"step got {len(actions)} actions for {self.num_envs} envs")
        self.finish_pending()  # never mixed with pipelined steps still under way
        active = [not flag for flag in self._needs_reset]
        results = step_all(self.envs, self.evaluator, actions, active)
        observations, rewards, terminated, truncated = [], [], [], []
        infos: dict[str, Any] = {}
        for i, (env, result) in enumerate(zip(self.envs, results, strict=True)):
            if result is None:  # ended last step: next-step autoreset
                obs, info = env.reset()
                result = (obs, 0.0, False, False, info)
            obs, reward, term, trunc, info = result
            observations.append(obs)
            rewards.append(reward)
            terminated.append(term)
            truncated.append(trunc)
            infos = self._add_info(infos, info, i)
        self._needs_reset = [t or u for t, u in zip(terminated, truncated, strict=True)]
        return (
            np.stack(observations),
            np.asarray(rewards, dtype=np.float64),
            np.asarray(terminated, dtype=np.bool_),
            np.asarray(truncated, dtype=np.bool_),
            infos,
        )

    def step_envs(
        self, actions: Sequence[Any], active: Sequence[bool]
    ) -> list[tuple[Any, float, bool, bool, dict[str, Any]] | None]:
        """Step the ``active`` envs with one batched evaluation, without any reset.

        The building block of :meth:`step` for adapters with their own reset rules (the
        Stable-Baselines3 ``VecEnv`` of the agents plugin): each active env's
        ``(obs, reward, terminated, truncated, info)``, ``None`` for the others.
        """
        self.finish_pending()
        return step_all(self.envs, self.evaluator, actions, active)

    def action_masks(self) -> np.ndarray:
        """The action mask of every env, ``(num_envs, n)`` booleans (see ``NASEnv.action_masks``).

        An env whose episode ended last step allows every action: its next step is a reset.
        """
        return np.stack([env.action_masks() for env in self.envs])

    def close_extras(self, **kwargs: Any) -> None:
        """Close the envs, the shared evaluator and the components it owns."""
        for env in self.envs:
            env.close()
        close = getattr(self.evaluator, "close", None)
        if close is not None:
            close()
        owned, self._owned = self._owned, []
        _close_all(owned)


def make_parallel_env(
    *,
    workers: int | None = None,
    address: str | None = None,
    num_envs: int | None = None,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    max_retries: int | None = None,
    timeout: float | None = None,
    config: Any = None,
    plugin_manager: PluginManager | None = None,
    seed: int | None = None,
    search_space: Any = None,
    state_encoder: Any = None,
    estimator: Any = None,
    dataset: Any = None,
    database: Any = None,
    **env_settings: Any,
) -> NASVectorEnv:
    """A :class:`NASVectorEnv` of ``num_envs`` environments evaluating on ``workers`` workers.

    The contract for ``nasframe search --workers N --ray-address A``::

        vector_env = make_parallel_env(config=config, workers=N, address=A or None, seed=s)

    (``workers`` and ``address`` left out come from ``[run] workers`` and
    ``[run] ray_address`` of the configuration.)

    Components and ``env_settings`` are those of :func:`nasframe.make_env` (names or
    instances; unnamed ones come from the configuration's ``[env]`` section), and every
    env shares one search space, encoder, estimator, dataset and database.

    * ``workers == 1`` (the default): no Ray; the envs share one in-process
      :class:`~nasframe.evaluation.Evaluator` and a step evaluates in order.
    * ``workers > 1``: one :class:`RayEvaluator` with ``workers`` actors. An estimator or
      dataset given by *name* (or by the configuration) is shipped as a
      :class:`ComponentSpec` (its registry name and configuration section), built once
      per worker; one given as an *instance* is pickled to the workers.

    Args:
        workers: parallel evaluations (more than 1 uses Ray); default ``[run] workers``.
        address: an existing Ray cluster; default ``[run] ray_address``, where empty
            starts a local one when needed.
        num_envs: environments stepped together (default: ``workers``).
        num_cpus: CPUs per evaluation (Ray); default ``[ray] num_cpus``.
        num_gpus: GPUs per evaluation, fractions allowed (Ray); default ``[ray] num_gpus``.
        max_retries: retries of an evaluation whose worker died (Ray); default
            ``[ray] max_retries``.
        timeout: seconds before a busy worker is stopped and the evaluation stored as
            ``timeout`` (Ray; ``0``: no limit); default ``[ray] timeout``.
        config: a :class:`~nasframe.Config` or the path of an INI file.
        plugin_manager: builds the components (default: a fresh one).
        seed: the estimator's seed; env ``i`` is first reset with ``seed + i`` (as
            ``vector_env.reset(seed=seed)`` does).
        search_space: see :func:`nasframe.make_env`.
        state_encoder: see :func:`nasframe.make_env`.
        estimator: see :func:`nasframe.make_env`.
        dataset: see :func:`nasframe.make_env`.
        database: see :func:`nasframe.make_env`.
        **env_settings: keys of the ``[env]`` section (``max_steps``, ``reward``, ...).

    Raises:
        ConfigError: a setting is out of range.
        RegistryError: a component name is unknown.
        PluginError: a component or Ray needs an extra that is not installed.
        NasframeError: the Ray cluster cannot be reached or lacks the resources.
    """
    from nasframe import compose
    from nasframe.env import make_env

    manager = compose.manager(plugin_manager)
    config, configured = compose.configuration(config, manager)
    if workers is None:
        workers = int(config.get("run", "workers"))
    if address is None:
        address = str(config.get("run", "ray_address") or "") or None
    ray_settings = config.section("ray")
    num_cpus = ray_settings["num_cpus"] if num_cpus is None else num_cpus
    num_gpus = ray_settings["num_gpus"] if num_gpus is None else num_gpus
    max_retries = ray_settings["max_retries"] if max_retries is None else max_retries
    timeout = (ray_settings["timeout"] if timeout is None else timeout) or None
    keep_workers = bool(ray_settings.get("keep_workers", False))
    check_worker_settings(workers, num_cpus, num_gpus, max_retries)
    count = workers if num_envs is None else num_envs
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"num_envs={num_envs!r} is not valid; need an integer >= 1")
    parts: dict[str, Any] = {
        "search_space": search_space,
        "state_encoder": state_encoder,
        "estimator": estimator,
        "dataset": dataset,
        # named now: the envs get the loaded configuration, which is "given" to them
        "database": compose.component_name("database", database, config, configured=configured)
        if database is None or isinstance(database, str)
        else database,
    }
    evaluator: Any = None
    owned: list[Any] = []
    if workers > 1:

        def spec(kind: str) -> Any:
            given = parts[kind]
            if given is not None and not isinstance(given, str):
                return given  # an instance: pickled to the workers
            info = manager.registry(kind).get(
                compose.component_name(kind, given, config, configured=configured)
            )
            return ComponentSpec(kind, info.name, compose.settings_for(info, config, manager))

        # The driver owns the database: build it here (the vector env closes it).
        parts["database"], built = compose.build("database", parts["database"], config, manager)
        if built:
            owned.append(parts["database"])
        try:
            evaluator = RayEvaluator(
                spec("estimator"),
                spec("dataset"),
                parts["database"],
                workers=workers,
                num_cpus=num_cpus,
                num_gpus=num_gpus,
                max_retries=max_retries,
                timeout=timeout,
                seed=seed,
                retry_transient=bool(
                    env_settings.get("retry_transient", config.get("env", "retry_transient"))
                ),
                plugin_manager=manager,
                address=address,
                keep_workers=keep_workers,
            )
        except BaseException:
            _close_all(owned)
            raise
        parts["estimator"], parts["dataset"] = evaluator.estimator, evaluator.dataset
    envs: list[Any] = []
    try:
        for i in range(count):
            # Env i starts from seed + i, so the envs do not all search the same episodes;
            # the evaluator (env 0's, or the Ray one) uses ``seed`` itself. Env 0 builds
            # the components named by name (and owns them); the others share its ones.
            env = make_env(
                config=config,
                plugin_manager=manager,
                seed=None if seed is None else seed + i,
                evaluator=evaluator,
                **parts,
                **env_settings,
            )
            parts.update(
                search_space=env.search_space,
                state_encoder=env.state_encoder,
                estimator=env.estimator,
                dataset=env.dataset,
                database=env.database,
            )
            if evaluator is None:
                evaluator = env.evaluator  # one evaluator (one cache) for every env
            envs.append(env)
    except BaseException:
        for env in envs:
            env.close()
        if isinstance(evaluator, RayEvaluator):
            evaluator.close()  # do not leave the workers running
        _close_all(owned)
        raise
    return NASVectorEnv(envs, evaluator, owned=owned)


def _close_all(components: Sequence[Any]) -> None:
    for component in components:
        close = getattr(component, "close", None)
        if close is not None:
            close()
