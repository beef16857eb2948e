"""The environment under random action sequences, in every search space (Hypothesis).

For every registered search space with every registered state encoder: random sequences
of actions -- valid ones, and now and then one that is not (out of range, not an
integer) -- never raise anything but the documented ``SearchSpaceError`` (for the bad
action, leaving the state unchanged) and ``ResetNeeded``; every observation is inside
the observation space; the reward is finite; an episode ends exactly when it says so.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import gymnasium
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from properties import examples, one_line

import nasframe
from nasframe import ArrayDataset, SearchSpaceError

MANAGER = nasframe.get_plugin_manager()
SPACES = MANAGER.registry("search_space").names()
ENCODERS = MANAGER.registry("state_encoder").names()


def dataset() -> ArrayDataset:
    rng = np.random.default_rng(0)
    return ArrayDataset.from_arrays("tiny", rng.random((24, 12, 12, 1)), np.arange(24) % 4)


@cache
def env(space: str, encoder: str) -> nasframe.NASEnv:
    """One env per combination, reused across examples (each example resets it)."""
    return nasframe.make_env(
        search_space=space,
        state_encoder=encoder,
        estimator="proxy",
        dataset=dataset(),
        plugin_manager=MANAGER,
        max_steps=12,
        seed=0,
    )


#: An action: an index into the action space (taken modulo its size), or a bad one.
actions = st.one_of(
    st.integers(0, 10_000).map(lambda i: ("valid", i)),
    st.sampled_from([-1, 10**9, 2.0, "1", None, True, np.array([1, 2])]).map(
        lambda bad: ("bad", bad)
    ),
)


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("space", SPACES)
@settings(max_examples=examples(40))
@given(seed=st.integers(0, 2**16), sequence=st.lists(actions, max_size=40))
def test_random_actions_keep_the_env_valid(
    space: str, encoder: str, seed: int, sequence: list[tuple[str, Any]]
) -> None:
    the_env = env(space, encoder)
    size = int(the_env.action_space.n)
    observation, info = the_env.reset(seed=seed)
    assert the_env.observation_space.contains(observation)
    done = False
    for kind, value in sequence:
        before = the_env.state
        if kind == "bad":
            integer = isinstance(value, int | np.integer) and not isinstance(value, bool)
            if integer and 0 <= value < size:
                continue  # a valid action after all (a space with many actions)
            # an ended episode refuses every action, as Gymnasium's ResetNeeded
            expected = gymnasium.error.ResetNeeded if done else SearchSpaceError
            with pytest.raises(expected) as error:
                the_env.step(value)
            one_line(error.value)
            assert the_env.state is before  # a refused action changes nothing
            continue
        if done:
            with pytest.raises(gymnasium.error.ResetNeeded):
                the_env.step(value % size)
            observation, info = the_env.reset()
            done = False
        observation, reward, terminated, truncated, info = the_env.step(value % size)
        assert the_env.observation_space.contains(observation), (space, encoder, info["nsc"])
        assert math.isfinite(reward)
        assert info["nsc"] == str(the_env.state.nsc)
        assert the_env.state.nsc.depth <= the_env.search_space.max_depth
        done = terminated or truncated
        assert done == ("end_reason" in info)
