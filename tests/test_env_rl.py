"""RL clients for real: Stable-Baselines3's checker and three algorithms on the env."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from nasframe import ArrayDataset
from nasframe.env import make_env

sb3 = pytest.importorskip("stable_baselines3")
from stable_baselines3.common.env_checker import check_env  # noqa: E402

MODES = ("absolute", "chained", "pointer")
ENCODERS = ("onehot", "matrix")


@pytest.fixture
def dataset() -> ArrayDataset:
    rng = np.random.default_rng(0)
    return ArrayDataset.from_arrays("tiny", rng.random((60, 8, 8, 1)), rng.integers(0, 4, 60))


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("mode", MODES)
def test_sb3_check_env_without_warnings(dataset: ArrayDataset, mode: str, encoder: str) -> None:
    # flatten: SB3 warns about any observation that is neither 1-D nor an image
    from nasframe.config import load_config

    config = load_config(overrides={"state_encoder": {"flatten": True}})
    env = make_env(
        search_space=mode,
        state_encoder=encoder,
        estimator="proxy",
        dataset=dataset,
        database="memory",
        config=config,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, warn=True)


@pytest.mark.parametrize(
    ("algorithm", "mode"), [("PPO", "chained"), ("A2C", "pointer"), ("DQN", "absolute")]
)
def test_sb3_agents_learn(dataset: ArrayDataset, algorithm: str, mode: str) -> None:
    env = make_env(search_space=mode, estimator="proxy", dataset=dataset, seed=0)
    cls = getattr(sb3, algorithm)
    options: dict[str, object] = {"seed": 0, "device": "cpu"}
    if algorithm == "PPO":
        options.update(n_steps=64, batch_size=32, n_epochs=2)
    elif algorithm == "A2C":
        options.update(n_steps=8)
    else:
        options.update(learning_starts=32, buffer_size=500, train_freq=4, target_update_interval=50)
    model = cls("MlpPolicy", env, **options)
    model.learn(total_timesteps=300)
    assert model.num_timesteps >= 300
    # the env did real work: networks were evaluated and cached
    assert env.evaluator.trainings > 0 and len(env.database) == env.evaluator.trainings
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))
