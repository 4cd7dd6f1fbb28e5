"""idagym envs in Stable-Baselines3 as its users call it: check_env, make_vec_env by id, PPO."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

import idagym  # noqa: F401  (registers idagym/Lookup-v0)
from idagym.lookup_env import NAMES
from idagym.wrappers import DiscreteActions

ENV_ID = "idagym/Lookup-v0"
ACTIONS = ["read", *NAMES[:4]]  # Lookup's default four names

# make_vec_env asks for render_mode="rgb_array" first; Gymnasium warns before the env refuses it
pytestmark = pytest.mark.filterwarnings("ignore:.*render_mode='rgb_array' that is not in the possible")


def lookup_vec_env(n_envs: int, seed: int = 0, **kwargs) -> VecEnv:
    return make_vec_env(
        ENV_ID, n_envs=n_envs, seed=seed, wrapper_class=DiscreteActions, wrapper_kwargs={"actions": ACTIONS}, **kwargs
    )


def test_check_env_passes_without_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(DiscreteActions(gym.make(ENV_ID), ACTIONS))
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize(
    "vec_env_cls,start_method",
    [(DummyVecEnv, None), (SubprocVecEnv, None), (SubprocVecEnv, "spawn"), (SubprocVecEnv, "fork")],
    ids=["dummy", "subproc-default", "subproc-spawn", "subproc-fork"],
)
def test_make_vec_env_by_string_id(vec_env_cls, start_method):
    vec_env_kwargs = {"start_method": start_method} if start_method else {}
    envs = lookup_vec_env(2, vec_env_cls=vec_env_cls, vec_env_kwargs=vec_env_kwargs)
    try:
        # SB3 asked for render_mode="rgb_array"; the env refused it and was made without
        assert envs.get_attr("render_mode") == [None, None]
        obs = envs.reset()
        assert obs.shape == (2, 2 * 128) and obs.dtype == np.float32
        _, rewards, dones, infos = envs.step(np.zeros(2, dtype=np.int64))  # read the memo
        assert not dones.any() and all(info["text"].startswith("memo says") for info in infos)
        names = [ACTIONS.index(info["text"].split()[-1]) for info in infos]
        _, rewards, dones, infos = envs.step(np.array(names))
        assert dones.all() and [info["success"] for info in infos] == [True, True]
        np.testing.assert_allclose(rewards, [1.0, 1.0])
    finally:
        envs.close()


def test_make_vec_env_step_limit_scores_the_cut_episode():
    envs = lookup_vec_env(2, env_kwargs={"max_episode_steps": 1})
    try:
        envs.reset()
        _, _, dones, infos = envs.step(np.zeros(2, dtype=np.int64))
        assert dones.all() and [info["success"] for info in infos] == [False, False]
        assert all(info["TimeLimit.truncated"] for info in infos)
    finally:
        envs.close()


def success_rate(model: PPO, envs: VecEnv, episodes: int) -> float:
    """Greedy success over the first `episodes` episodes that end, read from the env's own info."""
    successes: list[bool] = []
    obs = envs.reset()
    while len(successes) < episodes:
        actions, _ = model.predict(obs, deterministic=True)
        obs, _, dones, infos = envs.step(actions)
        successes += [bool(info["success"]) for done, info in zip(dones, infos, strict=True) if done]
    return float(np.mean(successes[:episodes]))


def test_ppo_learns_lookup_through_discrete_actions():
    torch.set_num_threads(1)  # small MLP: threads only add overhead
    model = PPO(
        "MlpPolicy", lookup_vec_env(8), n_steps=64, batch_size=128, n_epochs=4, learning_rate=3e-3,
        seed=0, device="cpu",
    )
    # a random policy succeeds about 1 time in 20: read, then the right one of 5 actions
    assert success_rate(model, lookup_vec_env(8, seed=1000), episodes=100) < 0.5
    model.learn(total_timesteps=10_000)
    assert success_rate(model, lookup_vec_env(8, seed=1000), episodes=400) >= 0.9
