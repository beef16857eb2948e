"""``tpe-v1``: Optuna's Tree-structured Parzen Estimator over an episode's action sequence.

Each proposal is one Optuna trial with ``length`` categorical parameters ``a0, a1, ...``
(one per action of the episode, each over every action id); the trial's value is the
reward the episode's architecture got, maximized. TPE models which action at which
position goes with good rewards -- a model-based black-box optimizer, the strongest
simple alternative an RL agent is judged against. Optuna (extra ``optuna``) is imported
only when the agent is built.

A checkpoint stores the finished trials; a loaded agent replays them into a fresh study,
so the model is the same, though its random draws after a resume differ from those of an
uninterrupted run.
"""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium

import nasframe
from nasframe_agents.episodic import EpisodicAgent

__all__ = ["TPEAgent"]


class TPEAgent(EpisodicAgent):
    """Optuna TPE over the actions of one episode (``ask``/``tell``).

    Args:
        env: the environment (``Discrete`` actions, not a vector env).
        seed: seeds the sampler.
        n_startup_trials: random proposals before TPE models the results.
        multivariate: model the positions jointly (Optuna's multivariate TPE) rather
            than one by one.
        length: actions per proposal (0: the env's ``max_steps``).

    Raises:
        ConfigError: a setting is out of range; the message names ``[tpe]`` and the key.
    """

    kind = "tpe"

    def __init__(
        self,
        env: gymnasium.Env[Any, Any],
        *,
        seed: int | None = None,
        n_startup_trials: int = 10,
        multivariate: bool = True,
        length: int = 0,
    ) -> None:
        super().__init__(env, seed=seed, length=length)
        if n_startup_trials < 1:
            raise nasframe.ConfigError(
                f"[tpe] n_startup_trials = {n_startup_trials}: must be at least 1"
            )
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._optuna = optuna
        self.n_startup_trials = int(n_startup_trials)
        self.multivariate = bool(multivariate)
        self._choices = list(range(self.start, self.start + self.n_actions))
        self._distributions: dict[str, Any] = {
            f"a{i}": optuna.distributions.CategoricalDistribution(self._choices)
            for i in range(self.length)
        }
        self.finished: list[tuple[list[int], float]] = []
        self._pending: dict[tuple[int, ...], list[Any]] = {}
        self.study = self._new_study()

    def _new_study(self) -> Any:
        optuna = self._optuna
        with warnings.catch_warnings():
            # multivariate TPE is marked experimental in Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(
                seed=self.seed,
                n_startup_trials=self.n_startup_trials,
                multivariate=self.multivariate,
            )
        return optuna.create_study(direction="maximize", sampler=sampler)

    def ask(self) -> list[int]:
        """The actions a new trial suggests, one categorical parameter per position."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", self._optuna.exceptions.ExperimentalWarning)
            trial = self.study.ask(self._distributions)
        actions = [int(trial.params[f"a{i}"]) for i in range(self.length)]
        self._pending.setdefault(tuple(actions), []).append(trial)
        return actions

    def update(self, actions: list[int], reward: float) -> None:
        """Finish the trial that proposed ``actions`` (or add one for a foreign sequence)."""
        actions = [int(a) for a in actions]
        self.finished.append((actions, float(reward)))
        trial = self._match(actions)
        if trial is not None:
            self.study.tell(trial, float(reward))
            return
        self._add(actions, float(reward))

    def _match(self, actions: list[int]) -> Any:
        # An episode that ended early took a prefix of its proposal; one that ran past it
        # took the proposal and more.
        for proposal, trials in self._pending.items():
            n = min(len(proposal), len(actions))
            if trials and list(proposal[:n]) == actions[:n]:
                trial = trials.pop(0)
                if not trials:
                    del self._pending[proposal]
                return trial
        return None

    def _add(self, actions: list[int], reward: float) -> None:
        filled = actions[: self.length] + [self.start] * (self.length - len(actions))
        params = {f"a{i}": a for i, a in enumerate(filled)}
        trial = self._optuna.trial.create_trial(
            params=params, distributions=self._distributions, value=reward
        )
        self.study.add_trial(trial)

    def state(self) -> dict[str, Any]:
        """The finished trials (actions and reward), oldest first."""
        return {"finished": [[a, r] for a, r in self.finished]}

    def restore(self, state: dict[str, Any]) -> None:
        """Replay the finished trials into a fresh study."""
        finished = [([int(a) for a in actions], float(r)) for actions, r in state["finished"]]
        self.study = self._new_study()
        self._pending = {}
        self.finished = []
        for actions, reward in finished:
            self.finished.append((actions, reward))
            self._add(actions, reward)
