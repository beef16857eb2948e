"""The NAS environment: NASGym's MDP on Gymnasium 1.x, built from plugin components.

One step (see ``docs/environment.md``)::

    plan = env.begin_step(action)          # validate, apply to the NSC state
    outcome = env.evaluator.evaluate(plan.nsc) if plan.nsc is not None else None
    obs, reward, terminated, truncated, info = env.finish_step(plan, outcome)

:meth:`NASEnv.step` is exactly that; the two halves are public so that a vector env can
collect the networks of many envs and evaluate them as one batch (Ray).

Semantics are NASGym's (``SEED-BEHAVIOUR.md`` section 2) with its bugs fixed:

* the reward is dense: after every action (layer, pointer move or terminal) the current
  network is evaluated -- through the experiment-database cache, so a network already
  seen costs a lookup. The terminal row is not part of the canonical hash, so the
  terminal action is always a cache hit and never retrains the network it ends;
* ``reward="accuracy"``: the validation accuracy in [0, 1]; ``reward="blockqnn"``:
  ``accuracy - (mu * ln(FLOPs) + rho * ln(density)) / 100`` -- NASGym's early-stop trainer
  computed ``100*acc - mu*ln(FLOPs) - rho*ln(density)`` and divided by 100; a logarithm
  of a non-positive number contributes 0, as in NASGym;
* a pointer move earns ``sigma`` times the reward of the (unchanged) network;
* an evaluation that fails (``invalid``, ``diverged``, ``out_of_memory``, ``error``) earns
  ``invalid_reward`` and ends the episode; so does a pointer (or an absolute predecessor)
  out of range, without any evaluation;
* ``terminated``: terminal action, the state is full (``max_depth`` rows), a failed
  evaluation, out of range; ``truncated``: ``max_steps`` actions without termination.

``evaluate="episode_end"`` gives BlockQNN's sparse reward instead: only the network an
episode ends with is evaluated (its last step: the terminal action, a full state,
``max_steps``, or a network the validity rule refuses); every earlier step earns 0,
trains nothing and reports ``status`` ``"not_evaluated"``. A search's budget of trainings
then goes to complete networks only, not to every prefix of them.

A step may also be *deferred* (the pipelined vector env): ``defer_step(plan)`` returns the
next observation and ``terminated``/``truncated`` at once, while the evaluation runs, and
``finish_step(plan, outcome)`` later gives the reward. Only the reward waits: the next
observation is the encoding of ``plan``'s state, and whether the step ends the episode is
decided from what is known before training -- the terminal action, a full state,
``max_steps``, a move out of range and the validity rule
(:meth:`~nasframe.PerformanceEstimator.why_invalid`, which ``evaluate`` agrees with). A
failure no one can foresee (``diverged``, ``out_of_memory``, ``error``, a ``invalid`` the
validity rule did not predict) earns ``invalid_reward`` but does not end a deferred
step's episode: the agent has moved on by the time it is known.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, SupportsFloat

import gymnasium
import numpy as np

from nasframe.config import Config
from nasframe.contracts import (
    DatasetHandler,
    Evaluation,
    ExperimentDB,
    PerformanceEstimator,
    SearchSpace,
    SearchState,
    StateEncoder,
    Status,
    Transition,
)
from nasframe.errors import ConfigError
from nasframe.evaluation import Evaluator, Outcome
from nasframe.nsc import NSC

if TYPE_CHECKING:
    from nasframe.plugins import PluginManager

__all__ = ["EVALUATE", "NOT_EVALUATED", "REWARDS", "Episode", "NASEnv", "StepPlan", "make_env"]

#: The reward functions :class:`NASEnv` knows.
REWARDS = ("accuracy", "blockqnn")

#: When :class:`NASEnv` evaluates the network: after every step (NASGym's dense reward)
#: or at the episode's last step only (BlockQNN's sparse reward).
EVALUATE = ("every_step", "episode_end")

#: The ``info["status"]`` of a step that evaluated nothing (so trained nothing): a move out
#: of range, and a step before the episode's end under ``evaluate="episode_end"``.
NOT_EVALUATED = frozenset({"out_of_range", "not_evaluated"})

#: Statuses whose accuracy counts as a reward (``timeout`` keeps the best accuracy so far).
_REWARDED = (Status.OK, Status.TIMEOUT)


@dataclass(frozen=True)
class StepPlan:
    """What :meth:`NASEnv.begin_step` decided: the change of state and what to evaluate.

    Attributes:
        step: the number of the step this plan belongs to (1 for the first of an episode).
        action: the integer action.
        transition: the search space's result of applying it.
        nsc: the network to evaluate, or ``None`` when nothing needs evaluating (a move out
            of range, or a step that ``evaluate="episode_end"`` skips).
        skipped: the step is not the episode's last and ``evaluate="episode_end"``: no
            evaluation, reward 0.
    """

    step: int
    action: int
    transition: Transition
    nsc: NSC | None
    skipped: bool = False


@dataclass(frozen=True)
class Episode:
    """One finished episode, as handed to ``nasframe_episode_ended``.

    Attributes:
        number: the episode's number in this env (from 1).
        nsc: the final network (terminal row included, if the episode ended with one).
        actions: the actions taken.
        rewards: the reward of every step.
        accuracies: the accuracy of the network after every step (0 where none).
        best_accuracy: the best accuracy seen in the episode.
        terminated: whether it ended by termination (else truncation).
        reason: why it ended: ``terminal``, ``full``, ``failed``, ``out_of_range`` or
            ``max_steps``.
        dataset: the dataset identity the rewards were measured on.
        trainings: how many steps of the episode trained (cache misses).
    """

    number: int
    nsc: NSC
    actions: tuple[int, ...]
    rewards: tuple[float, ...]
    accuracies: tuple[float, ...]
    best_accuracy: float
    terminated: bool
    reason: str
    dataset: str
    trainings: int

    @property
    def steps(self) -> int:
        """The number of steps of the episode."""
        return len(self.actions)

    @property
    def total_reward(self) -> float:
        """The sum of the rewards."""
        return float(sum(self.rewards))


@dataclass
class _EpisodeLog:
    actions: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)
    trainings: int = 0


@dataclass(frozen=True)
class _Deferred:
    """A step :meth:`NASEnv.defer_step` ended before its evaluation came back."""

    plan: StepPlan
    log: _EpisodeLog  # the episode it belongs to (the env may have reset since)
    terminated: bool
    truncated: bool
    reason: str
    action_mask: np.ndarray


class NASEnv(gymnasium.Env[np.ndarray, np.int64]):
    """Neural architecture search as a Gymnasium environment (NASGym's MDP).

    Args:
        search_space: the action space and what an action does.
        state_encoder: the observation space and observations.
        estimator: trains or scores networks.
        dataset: the data the reward is measured on (validation split).
        database: the experiment database, used as the evaluation cache.
        max_steps: actions per episode before it is truncated.
        reward: ``"accuracy"`` or ``"blockqnn"`` (see the module docs).
        evaluate: ``"every_step"`` (dense reward) or ``"episode_end"`` (only the network
            an episode ends with; see the module docs).
        mu: BlockQNN weight of ln(FLOPs).
        rho: BlockQNN weight of ln(density).
        sigma: reward factor of a pointer move.
        invalid_reward: reward of a failed evaluation or a move out of range.
        retry_transient: retrain cached ``out_of_memory``/``timeout``/``error`` results.
        seed: seed of the estimator, and of the first ``reset`` when it gets none.
        render_mode: ``None``, ``"ansi"`` (``render()`` returns the table) or ``"human"``
            (prints it).
        plugin_manager: fires ``nasframe_evaluation_stored`` and ``nasframe_episode_ended``;
            ``None`` fires nothing.
        evaluator: the evaluation service to use (one shared by a vector env, a Ray
            back end); by default the env builds an in-process
            :class:`~nasframe.evaluation.Evaluator` over ``estimator``, ``dataset`` and
            ``database``.
        owned: the components this env closes in :meth:`close` (those
            :func:`make_env` built by name); an instance handed in stays its owner's.

    Attributes:
        evaluator: the cache-aware evaluation service (``evaluate(nsc) -> Outcome``).
        state: the current :class:`~nasframe.contracts.SearchState`.
        last_episode: the :class:`Episode` that ended last, or ``None``.
        last_outcome: the evaluation :class:`~nasframe.evaluation.Outcome` of the last step
            (``None`` before the first step and when nothing was evaluated).
        last_plan: the :class:`StepPlan` of the last step finished (``None`` before the
            first step of an episode); with :attr:`last_outcome`, what the search's step
            log writes.
        last_cache_hit: whether the last step's network came from the cache (the database)
            without training. It depends on the cache's history, not on the step, so it is
            kept out of ``info`` (equal seeds and actions then give equal ``info``, as
            Gymnasium's ``check_env`` requires); the search writes it into the step log.

    Raises:
        ConfigError: a setting is out of range, or the estimator refuses the search space
            or dataset (:meth:`~nasframe.PerformanceEstimator.check_setup`).
    """

    # render_fps only tells recorders how fast to replay the text frames
    metadata: dict[str, Any] = {"render_modes": ["ansi", "human"], "render_fps": 4}  # noqa: RUF012

    def __init__(
        self,
        search_space: SearchSpace,
        state_encoder: StateEncoder,
        estimator: PerformanceEstimator,
        dataset: DatasetHandler,
        database: ExperimentDB,
        *,
        max_steps: int = 10,
        reward: str = "accuracy",
        evaluate: str = "every_step",
        mu: float = 0.5,
        rho: float = 0.5,
        sigma: float = 0.5,
        invalid_reward: float = 0.0,
        retry_transient: bool = False,
        seed: int | None = None,
        render_mode: str | None = None,
        plugin_manager: PluginManager | None = None,
        evaluator: Any = None,
        owned: Sequence[Any] = (),
    ) -> None:
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ConfigError(f"env setting max_steps must be an integer >= 1, got {max_steps!r}")
        if reward not in REWARDS:
            raise ConfigError(f"env setting reward is {reward!r}; valid: {', '.join(REWARDS)}")
        if evaluate not in EVALUATE:
            raise ConfigError(f"env setting evaluate is {evaluate!r}; valid: {', '.join(EVALUATE)}")
        for name, value in (("mu", mu), ("rho", rho), ("sigma", sigma)):
            if not value >= 0 or (name == "sigma" and value > 1):
                valid = "in [0, 1]" if name == "sigma" else ">= 0"
                raise ConfigError(f"env setting {name} must be {valid}, got {value!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(
                f"render_mode {render_mode!r} is not supported; valid: None, "
                + ", ".join(self.metadata["render_modes"])
            )
        # An estimator bound to one space or dataset (a benchmark table) refuses others now.
        check_setup = getattr(estimator, "check_setup", None)
        if check_setup is not None:
            check_setup(search_space, dataset)
        self.search_space = search_space
        self.state_encoder = state_encoder
        self.estimator = estimator
        self.dataset = dataset
        self.database = database
        self.max_steps = max_steps
        self.reward_name = reward
        self.evaluate = evaluate
        self.mu, self.rho, self.sigma = float(mu), float(rho), float(sigma)
        self.invalid_reward = float(invalid_reward)
        self.render_mode = render_mode
        self.plugin_manager = plugin_manager
        if evaluator is None:
            evaluator = Evaluator(
                estimator,
                dataset,
                database,
                seed=seed,
                retry_transient=retry_transient,
                plugin_manager=plugin_manager,
            )
        self.evaluator: Any = evaluator
        self._owned = list(owned)
        self.action_space = search_space.action_space
        self.observation_space = state_encoder.observation_space
        self._initial_seed = seed
        self.state: SearchState = search_space.reset()
        self._steps = 0
        self._done = False
        self._pending: StepPlan | None = None
        self._deferred: collections.deque[_Deferred] = collections.deque()
        self._log = _EpisodeLog()
        self._episodes = 0
        self.last_episode: Episode | None = None
        self.last_outcome: Outcome | None = None
        self.last_plan: StepPlan | None = None

    # -- Gymnasium API --------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode from the empty network.

        Args:
            seed: seeds ``self.np_random`` (the env itself draws nothing random today; the
                seed makes wrappers and future versions reproducible).
            options: ``{"task": name}`` switches the dataset's task (meta-RL).

        Raises:
            DatasetError: the task is unknown.
            ConfigError: an option is unknown.
        """
        if seed is None and self._initial_seed is not None and self._np_random is None:
            seed = self._initial_seed
        super().reset(seed=seed)
        options = dict(options or {})
        task = options.pop("task", None)
        if options:
            raise ConfigError(
                f"unknown reset option(s) {', '.join(map(repr, options))}; valid: task"
            )
        if task is not None:
            self.dataset.select_task(str(task))
        self.state = self.search_space.reset()
        self._steps = 0
        self._done = False
        self._pending = None
        self._log = _EpisodeLog()
        self.last_outcome = None
        self.last_plan = None
        info = {
            "step": 0,
            "nsc": str(self.state.nsc),
            "arch_hash": self.state.nsc.canonical_hash,
            "pointers": self.state.pointers,
            "dataset": self.dataset.identity,
            "action_mask": self.action_masks(),
        }
        return self._observe(), info

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Take ``action``: ``finish_step(plan, evaluate(plan.nsc))``.

        Raises:
            SearchSpaceError: the action is not an integer of the action space.
        """
        plan = self.begin_step(action)
        outcome = self.evaluator.evaluate(plan.nsc) if plan.nsc is not None else None
        return self.finish_step(plan, outcome)

    def render(self) -> str | None:
        """The network as a table (``"ansi"``: returned; ``"human"``: printed)."""
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; pass render_mode='ansi'")
            return None
        text = render_table(self.state, self._steps)
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def close(self) -> None:
        """Close the components this env owns (those :func:`make_env` built by name).

        A component handed in as an instance belongs to whoever built it and is left
        open. Closing twice is harmless.
        """
        owned, self._owned = self._owned, []
        errors: list[BaseException] = []
        for component in owned:
            close = getattr(component, "close", None)
            if close is None:
                continue
            try:
                close()
            except Exception as exc:  # close the others first, then report
                errors.append(exc)
        if errors:
            raise errors[0]

    # -- action masks ---------------------------------------------------------------------
    def action_masks(self) -> np.ndarray:
        """Which actions may be taken now: a boolean vector over the action space.

        ``False`` marks an action that cannot give a valid network -- a predecessor or
        pointer out of range (the space's ``out_of_bounds``), or a layer after which the
        network cannot be built (the estimator's
        :meth:`~nasframe.PerformanceEstimator.why_invalid`, the one validity rule).
        Pointer moves within range and the terminal action keep a valid network valid.
        The mask never masks everything: if every action would fail,
        the terminal actions (or, in a space without one, all actions) stay allowed. After
        the episode has ended every action is allowed (the next call is ``reset``).

        sb3-contrib's ``MaskablePPO`` calls this method; ``info["action_mask"]`` carries the
        same vector after every ``reset`` and ``step``.

        The mask is a pure function of the state (network and pointers), the search space,
        the estimator's validity rule and the dataset, so it is computed once per state
        and then looked up (a search over a small space, such as a benchmark table's,
        revisits the same few states all the time; computing one costs an
        ``apply`` and a ``why_invalid`` per action). The memo is dropped when the search
        space or the estimator object changes, and bounded in size.
        """
        actions = self.search_space.actions()
        if self._done:
            return np.ones(len(actions), dtype=np.bool_)
        memo: dict[tuple[Any, ...], np.ndarray] | None = getattr(self, "_mask_memo", None)
        owner = getattr(self, "_mask_memo_owner", None)
        if (
            memo is None
            or owner is None
            or owner[0] is not self.search_space
            or owner[1] is not self.estimator
            or len(memo) >= 10_000  # bounded: a large space rarely revisits a state
        ):
            memo = {}
            self._mask_memo: dict[tuple[Any, ...], np.ndarray] = memo
            self._mask_memo_owner = (self.search_space, self.estimator)
        key = (self.dataset.identity, self.state.nsc, self.state.pointers)
        known = memo.get(key)
        if known is not None:
            return known.copy()
        mask = np.ones(len(actions), dtype=np.bool_)
        for info in actions:
            if info.kind == "terminal":
                continue
            transition = self.search_space.apply(self.state, info.id)
            if transition.out_of_bounds:
                mask[info.id] = False
            elif info.kind == "layer" and transition.added is not None:
                reason = self.estimator.why_invalid(transition.state.nsc, self.dataset)
                mask[info.id] = reason is None
        if not mask.any():
            terminal = [info.id for info in actions if info.kind == "terminal"]
            mask[terminal or slice(None)] = True
        memo[key] = mask.copy()
        return mask

    # -- the two halves of a step ------------------------------------------------------------
    def begin_step(self, action: Any) -> StepPlan:
        """Validate ``action`` and apply it to the state; say what must be evaluated.

        Raises:
            SearchSpaceError: the action is not an integer of the action space; the state
                is left unchanged.
            gymnasium.error.ResetNeeded: the episode has ended.
        """
        if self._pending is not None:
            raise RuntimeError("begin_step called twice without finish_step for the first plan")
        if self._done:
            raise gymnasium.error.ResetNeeded(
                "the episode has ended (terminated or truncated); call reset() before step()"
            )
        transition = self.search_space.apply(self.state, action)
        action_id = transition.action.id
        self._steps += 1
        self.state = transition.state
        nsc = None if transition.out_of_bounds else transition.state.nsc
        plan = StepPlan(self._steps, action_id, transition, nsc)
        if nsc is not None and self.evaluate == "episode_end":
            # the episode's end is known before training (as for a deferred step)
            failed = self.estimator.why_invalid(nsc, self.dataset) is not None
            terminated, truncated, _ = self._step_end(plan, failed=failed)
            if not (terminated or truncated):
                plan = StepPlan(self._steps, action_id, transition, None, skipped=True)
        self._pending = plan
        return plan

    def finish_step(
        self, plan: StepPlan, outcome: Outcome | None
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Turn ``plan`` and the evaluation ``outcome`` into the Gymnasium step result.

        ``plan`` is the pending plan of :meth:`begin_step`, or the oldest step
        :meth:`defer_step` deferred: deferred steps are finished in the order they were
        taken, and keep the ``terminated``/``truncated`` they were given then (see the
        module docs); the observation returned is that of the step's own state.

        Args:
            plan: what :meth:`begin_step` returned for this step.
            outcome: the evaluation of ``plan.nsc`` (``None`` when ``plan.nsc`` is None).

        Raises:
            RuntimeError: ``plan`` is neither the pending plan of this env nor its oldest
                deferred step, or the outcome is missing for a plan that needs one.
        """
        deferred = self._deferred[0] if self._deferred else None
        if deferred is not None and plan is deferred.plan:
            if (outcome is None) != (plan.nsc is None):
                raise RuntimeError("finish_step needs an outcome exactly when plan.nsc is set")
            self._deferred.popleft()
            return self._finish(plan, outcome, deferred.log, deferred)
        if plan is not self._pending:
            raise RuntimeError(
                "finish_step got a plan that is not this env's pending plan (nor its "
                "oldest deferred step)"
            )
        if (outcome is None) != (plan.nsc is None):
            raise RuntimeError("finish_step needs an outcome exactly when plan.nsc is set")
        self._pending = None
        return self._finish(plan, outcome, self._log, None)

    def defer_step(self, plan: StepPlan) -> tuple[np.ndarray, bool, bool, dict[str, Any]]:
        """End the pending step now, before its evaluation is known (pipelined stepping).

        Returns the next observation, ``terminated``, ``truncated`` and an ``info`` of
        what is known without the evaluation (``reward_pending`` is ``True``; no
        ``accuracy``, ``status`` or ``reward``). The env can step (or reset) again at once;
        :meth:`finish_step` with the step's outcome gives the reward later, deferred
        steps in order. Whether the step ends the episode is decided as the module docs
        say; the episode's end (``last_episode``, ``nasframe_episode_ended``) waits for
        its last step's outcome.

        Raises:
            RuntimeError: ``plan`` is not this env's pending plan.
        """
        if plan is not self._pending:
            raise RuntimeError("defer_step got a plan that is not this env's pending plan")
        self._pending = None
        failed = plan.nsc is not None and (
            self.estimator.why_invalid(plan.nsc, self.dataset) is not None
        )
        terminated, truncated, reason = self._step_end(plan, failed=failed)
        if terminated or truncated:
            self._done = True
        mask = self.action_masks()
        self._deferred.append(_Deferred(plan, self._log, terminated, truncated, reason, mask))
        info = self._info(plan, None, 0.0, reason)
        for key in (
            "accuracy",
            "train_accuracy",
            "measure",
            "status",
            "message",
            "seconds",
            "params",
            "flops",
            "density",
        ):
            del info[key]
        del info["reward"]
        info["reward_pending"] = True
        info["action_mask"] = mask
        return self._observe(), terminated, truncated, info

    @property
    def deferred_steps(self) -> int:
        """Steps :meth:`defer_step` ended whose outcome :meth:`finish_step` has not had."""
        return len(self._deferred)

    def _step_end(self, plan: StepPlan, *, failed: bool) -> tuple[bool, bool, str]:
        """``terminated``, ``truncated`` and the reason of a step whose network ``failed``.

        One rule for both ways a step ends: with its evaluation (``failed``: its status
        earns no reward) or deferred (``failed``: the validity rule refuses the network).
        A plan without a network (``plan.nsc`` is None) moved out of range.
        """
        nsc = plan.transition.state.nsc
        reason = ""
        if plan.nsc is None and not plan.skipped:
            reason = "out_of_range"
        elif failed:
            reason = "failed"
        elif plan.transition.action.kind == "terminal" and nsc.terminated:
            reason = "terminal"
        elif len(nsc) >= self.search_space.max_depth:
            reason = "full"
        terminated = bool(reason)
        truncated = not terminated and plan.step >= self.max_steps
        return terminated, truncated, "max_steps" if truncated else reason

    def _finish(
        self,
        plan: StepPlan,
        outcome: Outcome | None,
        log: _EpisodeLog,
        deferred: _Deferred | None,
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        transition = plan.transition
        state = transition.state  # the env's state right after this step
        evaluation: Evaluation | None = outcome.evaluation if outcome is not None else None
        failed = evaluation is not None and evaluation.status not in _REWARDED
        if plan.skipped:
            reward = 0.0
        elif evaluation is None or failed:
            reward = self.invalid_reward
        else:
            reward = self._reward(evaluation)
            if transition.action.kind == "pointer":
                reward *= self.sigma
        if deferred is not None:  # the agent was told the end when the step was deferred
            terminated, truncated, reason = deferred.terminated, deferred.truncated, deferred.reason
        else:
            terminated, truncated, reason = self._step_end(plan, failed=failed)
        accuracy = float(evaluation.accuracy) if evaluation is not None else 0.0
        log.actions.append(plan.action)
        log.rewards.append(float(reward))
        log.accuracies.append(accuracy)
        log.trainings += int(outcome is not None and not outcome.cache_hit)
        self.last_outcome = outcome
        self.last_plan = plan
        info = self._info(plan, outcome, float(reward), reason)
        if terminated or truncated:
            if deferred is None:
                self._done = True
            self._end_episode(terminated, reason, log, state.nsc)
        if deferred is not None:
            info["action_mask"] = deferred.action_mask
        else:
            info["action_mask"] = self.action_masks()
        return self.state_encoder.encode(state), float(reward), terminated, truncated, info

    @property
    def last_cache_hit(self) -> bool:
        """Whether the last step's network came from the cache without training."""
        return self.last_outcome is not None and bool(self.last_outcome.cache_hit)

    # -- helpers ----------------------------------------------------------------------------
    def _reward(self, evaluation: Evaluation) -> float:
        reward = float(evaluation.accuracy)
        if self.reward_name == "blockqnn":
            penalty = self.mu * _safe_log(evaluation.flops) + self.rho * _safe_log(
                evaluation.density
            )
            reward -= penalty / 100.0
        return reward

    def _observe(self) -> np.ndarray:
        return self.state_encoder.encode(self.state)

    def _info(
        self, plan: StepPlan, outcome: Outcome | None, reward: float, reason: str
    ) -> dict[str, Any]:
        state = plan.transition.state
        nsc = state.nsc
        evaluation = outcome.evaluation if outcome is not None else None
        unevaluated = "not_evaluated" if plan.skipped else "out_of_range"
        info: dict[str, Any] = {
            "step": plan.step,
            "nsc": str(nsc),
            "arch_hash": nsc.canonical_hash,
            "action": plan.action,
            "action_label": plan.transition.action.label,
            "added": plan.transition.added,
            "pointers": state.pointers,
            "accuracy": float(evaluation.accuracy) if evaluation is not None else 0.0,
            "train_accuracy": evaluation.train_accuracy if evaluation is not None else None,
            "measure": evaluation.measure if evaluation is not None else "",
            "status": str(evaluation.status) if evaluation is not None else unevaluated,
            "message": evaluation.message if evaluation is not None else "",
            "seconds": float(evaluation.seconds) if evaluation is not None else 0.0,
            "params": int(evaluation.params) if evaluation is not None else 0,
            "flops": int(evaluation.flops) if evaluation is not None else 0,
            "density": float(evaluation.density) if evaluation is not None else 0.0,
            "reward": reward,
            "dataset": self.dataset.identity,
        }
        if reason:
            info["end_reason"] = reason
        return info

    def _end_episode(self, terminated: bool, reason: str, log: _EpisodeLog, nsc: NSC) -> None:
        self._episodes += 1
        episode = Episode(
            number=self._episodes,
            nsc=nsc,
            actions=tuple(log.actions),
            rewards=tuple(log.rewards),
            accuracies=tuple(log.accuracies),
            best_accuracy=max(log.accuracies, default=0.0),
            terminated=terminated,
            reason=reason,
            dataset=self.dataset.identity,
            trainings=log.trainings,
        )
        self.last_episode = episode
        if self.plugin_manager is not None:
            self.plugin_manager.hook.nasframe_episode_ended(episode=episode)


def _safe_log(value: float) -> float:
    # NASGym caught the math error of ln(0) and used a penalty of 0 for that term.
    return float(np.log(value)) if value > 0 else 0.0


def render_table(state: SearchState, step: int = 0) -> str:
    """A readable table of the network of ``state`` (what ``render("ansi")`` shows)."""
    lines = [f"step {step}: {state.nsc.depth} layer(s)  NSC {str(state.nsc) or '(empty)'}"]
    lines.append(f"{'idx':>3}  {'type':<12}{'kernel':>6}  inputs")
    for row in state.nsc:
        inputs = ", ".join("input" if p == 0 else str(p) for p in row.predecessors) or "-"
        kernel = str(row.kernel) if row.type.has_kernel else "-"
        lines.append(f"{row.index:>3}  {row.type.yaml_name:<12}{kernel:>6}  {inputs}")
    if state.pointers != (0, 0):
        lines.append(f"pointer offsets: pred1 {state.pointers[0]:+d}, pred2 {state.pointers[1]:+d}")
    return "\n".join(lines) + "\n"


# -- composition ---------------------------------------------------------------------------


def make_env(
    *,
    search_space: str | SearchSpace | None = None,
    state_encoder: str | StateEncoder | None = None,
    estimator: str | PerformanceEstimator | None = None,
    dataset: str | DatasetHandler | None = None,
    database: str | ExperimentDB | None = None,
    config: Config | str | Path | None = None,
    plugin_manager: PluginManager | None = None,
    seed: int | None = None,
    render_mode: str | None = None,
    evaluator: Any = None,
    **env_settings: Any,
) -> NASEnv:
    """Compose a :class:`NASEnv` from component names or instances.

    A component given by name is built by its registered factory with the settings of
    its configuration section; one not given at all is named by the configuration's
    ``[env]`` section (defaults: chained, onehot, keras, digits, csv) -- except that with
    neither a database nor a configuration, the in-memory ``memory`` database is used, so
    a quick script writes nothing to disk. ``env_settings`` (``max_steps``, ``reward``,
    ``evaluate``, ``mu``, ``rho``, ``sigma``, ``invalid_reward``, ``retry_transient``) win
    over ``[env]``.

    The env owns (and :meth:`NASEnv.close` closes) the components built here by name;
    one handed in as an instance stays open. The composition is :mod:`nasframe.compose`,
    shared with the vector env, the Ray workers and the agents.

    ``gymnasium.make("nasframe/NASGym-v0", **kwargs)`` calls this function.

    Args:
        search_space: a search space name (``chained``, ``pointer``, ``absolute``, ...) or
            instance.
        state_encoder: an encoder name (``onehot``, ``matrix``) or instance.
        estimator: an estimator name (``proxy``, ``keras``) or instance.
        dataset: a dataset name (``digits``, ...) or instance.
        database: a database name (``memory``, ``csv``, ``sqlite``) or instance.
        config: a :class:`~nasframe.Config` or the path of an INI file.
        plugin_manager: the plugin manager to build components with (a fresh one by
            default).
        seed: the estimator's seed; also seeds the first ``reset``.
        render_mode: see :class:`NASEnv`.
        evaluator: the evaluation service to use instead of the env's own (see
            :class:`NASEnv`).
        **env_settings: keys of the ``[env]`` section.

    Raises:
        ConfigError: a setting is unknown or invalid.
        RegistryError: a component name is unknown.
        PluginError: a component needs an extra that is not installed.
    """
    from nasframe import compose

    plugin_manager = compose.manager(plugin_manager)
    config, configured = compose.configuration(config, plugin_manager)
    settings = config.section("env")
    for key in env_settings:
        if key in compose.ENV_COMPONENTS or key not in settings:
            valid = sorted(k for k in settings if k not in compose.ENV_COMPONENTS)
            raise ConfigError(f"unknown env setting {key!r} (valid: {', '.join(valid)})")
    config = config.with_overrides({"env": env_settings}) if env_settings else config
    settings = config.section("env")
    owned: list[Any] = []

    def build(kind: str, given: Any, *args: Any) -> Any:
        component, built = compose.build(
            kind, given, config, plugin_manager, *args, configured=configured
        )
        if built:
            owned.append(component)
        return component

    try:
        space = build("search_space", search_space)
        encoder = build("state_encoder", state_encoder, space)
        env = NASEnv(
            space,
            encoder,
            build("estimator", estimator),
            build("dataset", dataset),
            build("database", database),
            max_steps=settings["max_steps"],
            reward=settings["reward"],
            evaluate=settings["evaluate"],
            mu=settings["mu"],
            rho=settings["rho"],
            sigma=settings["sigma"],
            invalid_reward=settings["invalid_reward"],
            retry_transient=settings["retry_transient"],
            seed=seed,
            render_mode=render_mode,
            plugin_manager=plugin_manager,
            evaluator=evaluator,
            owned=owned,
        )
    except BaseException:
        for component in reversed(owned):  # nothing built here may stay open
            close = getattr(component, "close", None)
            if close is not None:
                close()
        raise
    return env
