"""Sampled builds: a space too large to enumerate, tabulated from a sample of it.

``nasframe bench build`` with ``[bench] sample = N`` trains N distinct networks instead
of every network (issue 30; the multi-branch space has 3,181 networks to depth 3 and
far too many to depth 10). The sample has two parts, as NAS-Bench-301's has:

* **random episodes** (:func:`random_networks`): each draw plays one episode of the
  space's own actions, chosen uniformly among those that keep the episode inside the
  space, until the network has a target depth; the target depths cycle through
  ``1 .. depth`` so every depth is drawn equally often (uniform over networks would be
  nearly all depth-10 networks). Draws are deduplicated by canonical graph hash and
  networks the estimator would call invalid are skipped. The draws are a seeded stream:
  the first N of a seed are the first N of the same seed with a larger N, so a sample
  grows without retraining what is stored.
* **search trajectories** (:func:`agent_networks`): search agents (regularized
  evolution and PPO by default) run on the live estimator, so the good regions of the
  space are covered as well as the typical ones. Each network an agent visits is
  trained once and stored as a table row (:class:`LiveRows`); a network already stored
  is answered from its row without training. A stopped build replays each agent from
  the start: the stored rows give it the same rewards (to the six digits a row keeps),
  so it walks the same trajectory and trains only what is missing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasframe.bench.table import RowWriter, TableRow
from nasframe.contracts import (
    DatasetHandler,
    Evaluation,
    PerformanceEstimator,
    SearchSpace,
    Status,
)
from nasframe.distributed.rows import measure_row
from nasframe.errors import ConfigError
from nasframe.nsc import NSC

__all__ = [
    "REPEAT_PICKS",
    "LiveRows",
    "SampleSettings",
    "agent_networks",
    "random_episode",
    "random_networks",
    "repeat_networks",
    "row_evaluation",
]

#: How a build picks the networks its repeat seeds train: the best by the first seeds,
#: or a seeded random fraction (seed noise over the whole range, as a surrogate needs).
REPEAT_PICKS = ("top", "random")


@dataclass(frozen=True)
class SampleSettings:
    """What a sampled build draws (``[bench] sample``, ``sample_agents``, ...).

    Attributes:
        size: distinct networks in the sample; 0: every network (an exhaustive build).
        agents: search agents whose trajectories are part of the sample.
        agent_share: the fraction of ``size`` the agents' trajectories hold, split
            equally between them; the rest comes from random episodes.
        seed: the seed of the random episodes and of the agents.
        step_factor: an agent stops after ``step_factor`` environment steps per network
            of its share, even if it keeps revisiting networks it has seen.
    """

    size: int = 0
    agents: tuple[str, ...] = ("rea", "ppo")
    agent_share: float = 0.25
    seed: int = 0
    step_factor: int = 10

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise ConfigError(f"[bench] sample = {self.size!r}: need an integer >= 0")
        if not 0.0 <= self.agent_share <= 1.0:
            raise ConfigError(f"[bench] agent_share = {self.agent_share}: must be in [0, 1]")
        if self.agent_share > 0 and self.size and not self.agents:
            raise ConfigError(
                f"[bench] agent_share = {self.agent_share} but sample_agents is empty; "
                "name agents (e.g. rea,ppo) or set agent_share = 0"
            )

    @property
    def per_agent(self) -> int:
        """Distinct networks each agent's trajectory holds."""
        if not self.agents:
            return 0
        return round(self.size * self.agent_share / len(self.agents))

    @property
    def random(self) -> int:
        """Distinct networks drawn from random episodes."""
        return self.size - self.per_agent * len(self.agents)

    def card(self) -> dict[str, Any]:
        """The settings as the build card records them."""
        return {
            "size": self.size,
            "agents": list(self.agents),
            "agent_share": self.agent_share,
            "seed": self.seed,
            "step_factor": self.step_factor,
        }


def random_episode(space: SearchSpace, depth: int, rng: np.random.Generator) -> NSC | None:
    """The network of one uniformly random episode of ``space`` that stops at ``depth`` layers.

    Each step picks uniformly among the non-terminal actions that stay inside the space
    (layer actions and, in the pointer mode, pointer moves). ``None`` when the episode
    cannot reach ``depth`` within ``4 * depth + 8`` steps (pointer moves add no layer).
    """
    state = space.reset()
    actions = [info.id for info in space.actions() if info.kind != "terminal"]
    for _ in range(4 * depth + 8):
        network = state.nsc.without_terminal()
        if len(network) >= depth:
            return network
        moves = []
        for action in actions:
            transition = space.apply(state, action)
            if not transition.out_of_bounds:
                moves.append(transition.state)
        if not moves:
            return None
        state = moves[int(rng.integers(len(moves)))]
    network = state.nsc.without_terminal()
    return network if len(network) >= depth else None


def random_networks(
    space: SearchSpace,
    depth: int,
    count: int,
    seed: int,
    *,
    accept: Callable[[NSC], bool] | None = None,
) -> list[NSC]:
    """``count`` distinct networks of random episodes, target depths cycling ``1 .. depth``.

    The head-only network comes first (every table holds the baseline). Draws that repeat
    a network, or that ``accept`` rejects (the estimator's validity rule), are skipped;
    after ``100 * count`` draws the list may be shorter (a space smaller than the sample).
    The list for ``count`` is a prefix of the list for any larger ``count``.
    """
    if count <= 0:
        return []
    rng = np.random.default_rng(seed)
    head = space.reset().nsc.without_terminal()
    found: dict[str, NSC] = {head.canonical_hash: head}
    draws = 0
    while len(found) < count and draws < 100 * count and depth > 0:
        target = 1 + draws % depth
        draws += 1
        network = random_episode(space, target, rng)
        if network is None or network.canonical_hash in found:
            continue
        if accept is not None and not accept(network):
            continue
        found[network.canonical_hash] = network
    return list(found.values())


def row_evaluation(row: TableRow) -> Evaluation:
    """What an environment gets for a stored row: its last-epoch validation accuracy.

    Values are rounded as ``rows.csv`` stores them (six significant digits), so a row
    answered right after its training and the same row read back after a resume give an
    agent the same reward.
    """
    nsc = NSC.parse(row.nsc) if row.nsc else NSC()
    if not row.ok:
        return Evaluation.failed(
            row.status,
            row.message or f"recorded as {row.status}",
            params=row.params,
            flops=row.flops,
            density=nsc.density(),
        )
    return Evaluation(
        accuracy=float(f"{row.accuracy():.6g}"),
        params=row.params,
        flops=row.flops,
        density=nsc.density(),
        seconds=float(f"{row.seconds:.6g}"),
        epochs=row.epochs,
    )


class LiveRows(PerformanceEstimator):
    """The build's estimator as a search agent sees it: each network trained once, stored.

    Args:
        estimator: the build's estimator (it trains what is not stored).
        dataset: the build's dataset.
        stored: the rows stored so far, by canonical hash (updated as rows are trained).
        writer: where a new row goes (``rows.csv``).
        seed: the training seed of new rows.
        budget: ``[n]``, rows this run may still train (shared with the build; spent
            here). At 0 a new network is answered with status ``timeout`` and not
            stored: the run stops, and the replay of the next run trains it.
    """

    name = "live-rows"

    def __init__(
        self,
        estimator: PerformanceEstimator,
        dataset: DatasetHandler,
        stored: dict[str, TableRow],
        writer: RowWriter,
        seed: int,
        budget: list[int],
    ) -> None:
        self.estimator = estimator
        self.dataset = dataset
        self.stored = stored
        self.writer = writer
        self.seed = seed
        self.budget = budget
        #: the networks visited, in order, by canonical hash
        self.visited: dict[str, NSC] = {}
        #: rows this estimator trained
        self.trained = 0

    def fingerprint(self) -> str:
        return self.estimator.fingerprint()

    def why_invalid(self, architecture: NSC, dataset: DatasetHandler) -> str | None:
        return self.estimator.why_invalid(architecture, dataset)

    def check_setup(self, search_space: SearchSpace, dataset: DatasetHandler) -> None:
        self.estimator.check_setup(search_space, dataset)

    def evaluate(
        self, architecture: NSC, dataset: DatasetHandler, *, seed: int | None = None
    ) -> Evaluation:
        network = architecture.without_terminal()
        arch_hash = network.canonical_hash
        row = self.stored.get(arch_hash)
        if row is None:
            if self.budget[0] <= 0:
                return Evaluation.failed(Status.TIMEOUT, "the build's --limit is spent")
            row = measure_row(self.estimator, self.dataset, network, self.seed)
            self.writer.write(row)
            self.stored[arch_hash] = row
            self.budget[0] -= 1
            self.trained += 1
        self.visited.setdefault(arch_hash, network)
        return row_evaluation(row)


def agent_networks(
    agent_name: str,
    live: LiveRows,
    *,
    space: SearchSpace,
    depth: int,
    count: int,
    seed: int,
    step_factor: int,
    evaluate: str = "every_step",
    config: Any = None,
    plugin_manager: Any = None,
) -> dict[str, NSC]:
    """The networks agent ``agent_name`` visits, searching ``live`` until it has ``count``.

    The agent learns as in a search (``Agent.learn``) on a fresh environment of
    ``space`` (episodes of at most ``depth`` steps; ``evaluate`` as ``[env] evaluate``)
    whose estimator is ``live``. It stops when it has visited ``count`` distinct
    networks, after ``step_factor * count`` steps, or when the build's budget is spent.
    Returns the visited networks by canonical hash, in the order visited.
    """
    from nasframe.agents import make_agent
    from nasframe.env import NASEnv

    if count <= 0:
        return {}
    registries = plugin_manager.registries()
    encoder_name = "onehot-pointers" if space.uses_pointers else "onehot"
    encoder = registries["state_encoder"].create(encoder_name, space)
    env = NASEnv(
        space,
        encoder,
        live,
        live.dataset,
        plugin_manager.databases().create("memory"),
        max_steps=depth,
        evaluate=evaluate,
        seed=seed,
    )
    if "torch" in plugin_manager.agents().get(agent_name).requires:
        import torch  # the policies are tiny; one thread leaves the cores to the trainings

        torch.set_num_threads(1)
    agent = make_agent(agent_name, env, seed=seed, config=config, plugin_manager=plugin_manager)

    def more() -> bool:
        return len(live.visited) < count and live.budget[0] > 0

    try:
        agent.learn(step_factor * count, more)
    finally:
        agent.close()
        env.close()
    return dict(list(live.visited.items())[:count])


def repeat_networks(
    hashes: Sequence[str],
    scores: dict[str, float],
    fraction: float,
    pick: str,
    seed: int,
) -> list[str]:
    """The ``fraction`` of ``hashes`` that the repeat seeds train.

    ``pick = "top"``: the best by ``scores``; ``"random"``: a seeded random subset of
    the sorted hashes (the same for the same sample and seed).
    """
    if pick not in REPEAT_PICKS:
        raise ConfigError(
            f"[bench] repeat_pick = {pick!r}: choose one of {', '.join(REPEAT_PICKS)}"
        )
    size = math.ceil(len(hashes) * fraction)
    if pick == "top":
        return sorted(hashes, key=lambda h: -scores.get(h, 0.0))[:size]
    ordered = sorted(hashes)
    order = np.random.default_rng(seed).permutation(len(ordered))
    return [ordered[i] for i in order[:size]]
