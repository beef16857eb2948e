"""Random search: every action id drawn uniformly, as NASGym's random-search baseline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np

import nasframe


class RandomAgent(nasframe.Agent):
    """Draws every action uniformly at random from a ``Discrete`` action space.

    It learns nothing, which makes it the baseline every learner must beat. Its
    checkpoint is the random generator's state, so a resumed search draws exactly the
    actions an uninterrupted one would have drawn.

    It is also an ask/tell agent (``nasframe.AskTellAgent``), so ``nasframe search
    --workers N`` runs it asynchronously: :meth:`ask` draws the actions of a whole
    episode, one after another, and stops where the environment's episode will end
    (the terminal action, a full network, a pointer out of range, ``max_steps``), which
    it learns by applying them to the search space; :meth:`tell` only counts the steps.

    **One seed, one set of episodes.** In a nasframe environment every episode uses
    exactly ``max_steps`` draws of the one generator, however early it ends: the serial
    :meth:`learn` draws an action per step and, when the episode ends, skips the draws
    it left unused; :meth:`ask` draws all ``max_steps`` at once and cuts the list where
    the search space ends the episode. So the k-th episode has the same actions whether
    it is played serially or asked -- whatever ended the episodes before it (a failed
    evaluation, which no plan can foresee) and in whatever order their results came
    back -- and with one seed the asynchronous search evaluates the serial search's set
    of networks. (Were the draws counted per action applied, an episode that a failed
    evaluation cut short would use fewer draws serially than asked, and shift every
    later episode.)

    Args:
        env: the environment; its action space must be ``gymnasium.spaces.Discrete``.
        seed: seeds the action draws and the first ``reset``.

    Raises:
        ConfigError: the action space is not ``Discrete``.
    """

    checkpoint_suffix = ".json"

    def __init__(self, env: gymnasium.Env[Any, Any], *, seed: int | None = None) -> None:
        super().__init__(env, seed=seed)
        self._vector = isinstance(env, gymnasium.vector.VectorEnv)
        space = env.single_action_space if self._vector else env.action_space  # type: ignore[attr-defined]
        if not isinstance(space, gymnasium.spaces.Discrete):
            raise nasframe.ConfigError(
                f"agent 'random' needs a Discrete action space, got {type(space).__name__}"
            )
        self._n = int(space.n)
        self._start = int(space.start)
        self._rng = np.random.default_rng(seed)
        self._steps = 0
        self._episode_open = False
        self._position = 0  # steps of the open episode (serial learn)
        self._seeded = False
        self._ended = np.zeros(0, dtype=bool)

    @property
    def num_timesteps(self) -> int:
        """Steps taken over the agent's life, checkpoints included."""
        return self._steps

    def learn(self, total_steps: int, callback: nasframe.StepCallback | None = None) -> int:
        """Take up to ``total_steps`` random actions; see :meth:`nasframe.Agent.learn`.

        On a ``gymnasium.vector.VectorEnv`` each step draws one action per sub-env and
        counts one step per sub-env that stepped (an autoreset is not a step); the vector
        env resets finished episodes itself.
        """
        if self._vector:
            return self._learn_vector(total_steps, callback)
        taken = 0
        draws = self._draws_per_episode()
        while taken < total_steps:
            if not self._episode_open:
                # Seed the environment once, on the very first reset of the agent's life.
                seed = None if self._seeded else self.seed
                _, info = self.env.reset(seed=seed)
                self._seeded = True
                self._episode_open = True
                # A resumed run's reset replays the episode the checkpoint left open.
                self._position = int(info.get("step", 0) or 0)
            action = self._draw()
            _, _, terminated, truncated, info = self.env.step(action)
            taken += 1
            self._steps += 1
            self._position += 1
            # a trial wrapper (nasframe.env.wrappers.TrialWrapper) starts the trial's next NAS
            # episode itself: that episode, too, uses its own max_steps draws
            ended_inner = bool(info.get("inner_terminated") or info.get("inner_truncated"))
            if terminated or truncated or ended_inner:
                self._episode_open = not (terminated or truncated)
                self._skip(draws - self._position)  # the draws an ask() would have used
                self._position = 0
            if callback is not None and not callback():
                break
        return taken

    # -- ask/tell ------------------------------------------------------------------------
    def ask(self) -> list[int]:
        """The random actions of one whole episode; see :class:`nasframe.AskTellAgent`.

        Raises:
            ConfigError: the environment is not a nasframe environment (it has no
                ``search_space`` and ``max_steps`` to tell where an episode ends).
        """
        if not self._can_plan():
            raise nasframe.ConfigError(
                "agent 'random' can only ask for whole episodes in a nasframe environment "
                f"(one with search_space and max_steps), got {type(self._base_env()).__name__}"
            )
        return self._plan_episode()

    def tell(self, actions: list[int], reward: float) -> None:
        """Count the episode's steps; random search learns nothing from the reward."""
        self._steps += len(actions)

    def _base_env(self) -> Any:
        env: Any = self.env
        return env.envs[0].unwrapped if self._vector and hasattr(env, "envs") else env.unwrapped

    def _can_plan(self) -> bool:
        base = self._base_env()
        return hasattr(base, "search_space") and hasattr(base, "max_steps")

    def _draw(self) -> int:
        return self._start + int(self._rng.integers(self._n))

    def _skip(self, count: int) -> None:
        """Use up ``count`` draws, exactly as ``count`` calls of :meth:`_draw` do."""
        for _ in range(max(0, count)):
            self._draw()

    def _draws_per_episode(self) -> int:
        """The draws every episode uses: ``max_steps`` in a nasframe env, else 0 (any)."""
        return int(self._base_env().max_steps) if self._can_plan() else 0

    def _plan_episode(self) -> list[int]:
        """``max_steps`` draws, cut where the episode ends by itself.

        No evaluation is known yet, so the cut is where the search space ends the episode
        (the terminal action, a full network, a pointer out of range); a failed
        evaluation may end it earlier, and the draws after it are never applied.
        """
        base = self._base_env()
        space = base.search_space
        draws = [self._draw() for _ in range(self._draws_per_episode())]
        state = space.reset()
        for length, action in enumerate(draws, start=1):
            transition = space.apply(state, action)
            state = transition.state
            ended = transition.out_of_bounds or len(state.nsc) >= space.max_depth
            if ended or (transition.action.kind == "terminal" and state.nsc.terminated):
                return draws[:length]
        return draws

    def _learn_vector(self, total_steps: int, callback: nasframe.StepCallback | None) -> int:
        env: Any = self.env
        taken = 0
        if not self._episode_open:
            env.reset(seed=None if self._seeded else self.seed)
            self._seeded = self._episode_open = True
            self._ended = np.zeros(env.num_envs, dtype=bool)
        while taken < total_steps:
            actions = self._start + self._rng.integers(self._n, size=env.num_envs)
            _, _, terminated, truncated, _ = env.step(actions)
            # In Gymnasium's next-step autoreset mode an env whose episode ended in the
            # previous step only resets in this one: that is not a step of the search.
            real = int(env.num_envs - np.count_nonzero(self._ended))
            self._ended = np.logical_or(terminated, truncated)
            taken += real
            self._steps += real
            if callback is not None and not callback():
                break
        return taken

    def play(self, total_steps: int, callback: nasframe.StepCallback | None = None) -> int:
        """Random search learns nothing, so playing is searching: see :meth:`learn`."""
        return self.learn(total_steps, callback)

    def save(self, path: Path) -> Path:
        """Write the generator state and step count as JSON."""
        path = Path(path)
        state = {
            "agent": "random",
            "steps": self._steps,
            "seeded": self._seeded,
            "rng": self._rng.bit_generator.state,
        }
        path.write_text(json.dumps(state), encoding="utf-8")
        return path

    def load(self, path: Path) -> None:
        """Restore a checkpoint written by :meth:`save`; the next episode starts fresh."""
        path = Path(path)
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            if state.get("agent") != "random":
                raise ValueError("not a random-agent checkpoint")
            rng = np.random.default_rng()
            rng.bit_generator.state = state["rng"]
            steps = int(state["steps"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise nasframe.NasframeError(
                f"{path}: cannot load the random agent's checkpoint ({exc})"
            ) from None
        self._rng = rng
        self._steps = steps
        self._seeded = bool(state.get("seeded", True))
        self._episode_open = False
