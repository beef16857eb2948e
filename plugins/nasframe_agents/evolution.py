"""``rea-v1``: regularized evolution (Real et al. 2019), the NAS-Bench-101 baseline.

A genome is the action sequence of one episode. The first ``population`` proposals are
uniformly random (or, with ``initial``, those sequences first: a warm start from
networks known to be good elsewhere, the transfer baseline of ``bench transfer``);
after that each proposal is a mutant of the best of ``sample`` members drawn at random
from the population: one action (in the chained and pointer spaces, one NSC row)
replaced by a different one. Every told result joins the population and the oldest
member leaves it -- the "regularization" that ages out lucky evaluations.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import gymnasium

import nasframe
from nasframe_agents.episodic import EpisodicAgent

__all__ = ["RegularizedEvolution"]


class RegularizedEvolution(EpisodicAgent):
    """Regularized (aging) evolution over the action sequences of episodes.

    Args:
        env: the environment (``Discrete`` actions, not a vector env).
        seed: seeds every draw.
        population: members kept (the oldest leaves when a new one is told).
        sample: members drawn for each tournament (``<= population``).
        length: actions per proposal (0: the env's ``max_steps``).
        initial: action sequences proposed first, in order, before any random one (the
            first population, or its first members when there are fewer than
            ``population``; with more, the population keeps the youngest as always).
            Not a configuration key: a caller passes it (``bench transfer``'s
            ``rea-warm``).

    Raises:
        ConfigError: a setting is out of range, or an initial sequence holds an action
            outside the action space; the message names ``[rea]`` and the key.
    """

    kind = "rea"

    def __init__(
        self,
        env: gymnasium.Env[Any, Any],
        *,
        seed: int | None = None,
        population: int = 20,
        sample: int = 5,
        length: int = 0,
        initial: Sequence[Sequence[int]] = (),
    ) -> None:
        super().__init__(env, seed=seed, length=length)
        if population < 2:
            raise nasframe.ConfigError(f"[rea] population = {population}: must be at least 2")
        if not 1 <= sample <= population:
            raise nasframe.ConfigError(
                f"[rea] sample = {sample}: must be between 1 and population ({population})"
            )
        self.population_size = int(population)
        self.sample = int(sample)
        self.population: deque[tuple[list[int], float]] = deque()
        self.told = 0
        self.initial = [[int(a) for a in actions] for actions in initial]
        for number, actions in enumerate(self.initial):
            wrong = [a for a in actions if not self.start <= a < self.start + self.n_actions]
            if wrong or not actions:
                raise nasframe.ConfigError(
                    f"[rea] initial: sequence {number} ({actions}) "
                    + (f"holds action {wrong[0]}, " if wrong else "is empty; ")
                    + f"the actions are {self.start}..{self.start + self.n_actions - 1}"
                )
        #: how many of ``initial`` have been proposed
        self.initial_asked = 0

    def ask(self) -> list[int]:
        """``initial`` first, a random sequence while the population fills, then a mutant."""
        if self.initial_asked < len(self.initial):
            self.initial_asked += 1
            return list(self.initial[self.initial_asked - 1])
        if len(self.population) < self.population_size:
            return self.random_actions(self.length)
        picks = self.rng.choice(len(self.population), size=self.sample, replace=False)
        # the best of the sample; on a tie, the younger member (its result is fresher)
        parent = max(picks, key=lambda i: (self.population[i][1], i))
        return self.mutate(self.population[int(parent)][0])

    def mutate(self, parent: list[int]) -> list[int]:
        """``parent`` with one action replaced by a different one, filled up to ``length``.

        Only actions the parent's episode actually took are mutated (changing an action
        after its end would change nothing); a terminal action that is mutated lets the
        episode continue, with random actions after it.
        """
        child = list(parent[: self.length])
        child += self.random_actions(self.length - len(child))
        if self.n_actions < 2:
            return child
        position = int(self.rng.integers(max(1, min(len(parent), self.length))))
        offset = 1 + int(self.rng.integers(self.n_actions - 1))
        child[position] = self.start + (child[position] - self.start + offset) % self.n_actions
        return child

    def update(self, actions: list[int], reward: float) -> None:
        """Add the result as the youngest member; the oldest leaves a full population."""
        self.population.append(([int(a) for a in actions], float(reward)))
        while len(self.population) > self.population_size:
            self.population.popleft()
        self.told += 1

    def state(self) -> dict[str, Any]:
        """The population (oldest first), the results told and the initial ones asked."""
        return {
            "population": [[a, r] for a, r in self.population],
            "told": self.told,
            "initial_asked": self.initial_asked,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned."""
        members = [([int(a) for a in actions], float(r)) for actions, r in state["population"]]
        self.population = deque(members[-self.population_size :])
        self.told = int(state["told"])
        self.initial_asked = int(state.get("initial_asked", 0))
