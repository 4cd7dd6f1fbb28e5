"""Gymnasium wrappers over idagym text environments: truncation, chat history, step limits, discrete actions."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import idagym  # noqa: F401
from idagym.core import DigitalEnv, Evaluation
from idagym.wrappers import ChatHistory, DiscreteActions, TruncateObservation, chat_space, hashed_bag_of_words

# check_env on purpose gets wrapped envs here: the wrappers are what is checked
pytestmark = pytest.mark.filterwarnings("ignore:.*different from the unwrapped version")


class Echo(DigitalEnv):
    """Prints its action `n` times; `stop` ends the task."""

    def task_ids(self, split: str) -> list[str]:
        return ["echo"]

    def open_task(self, task_id: str, seed: int | None) -> str:
        self.stopped = False
        return "say something " * 20

    def execute(self, action: str) -> str:
        self.stopped = action == "stop"
        return action * 50

    def task_completed(self) -> bool:
        return self.stopped

    def evaluate(self) -> Evaluation:
        return Evaluation(int(self.stopped), 1)


def test_truncate_observation_caps_every_observation():
    env = TruncateObservation(Echo(max_obs_chars=0), max_chars=100)
    obs, _ = env.reset(seed=0)
    assert len(obs) <= 100 and "truncated" in obs and obs in env.observation_space
    obs, *_ = env.step("é")  # 50 characters: under the cap, untouched
    assert obs == "é" * 50
    obs, *_ = env.step("abc")  # 150 characters: head and tail kept
    assert len(obs) <= 100 and obs.startswith("abc") and obs.endswith("abc") and obs in env.observation_space
    check_env(env, skip_render_check=True)


def test_truncate_below_marker_length_still_honours_the_cap():
    env = TruncateObservation(Echo(max_obs_chars=0), max_chars=10)
    obs, _ = env.reset(seed=0)
    assert obs == "say someth"
    with pytest.raises(ValueError, match="max_chars"):
        TruncateObservation(Echo(), max_chars=0)


def test_chat_history_is_a_valid_growing_conversation():
    env = ChatHistory(gym.make("idagym/Lookup-v0"))
    obs, _ = env.reset(seed=1)
    assert obs == ({"role": "user", "content": obs[0]["content"]},) and obs in env.observation_space
    obs, *_ = env.step("read")
    assert [m["role"] for m in obs] == ["user", "assistant", "user"]
    assert obs[1]["content"] == "read" and obs[2]["content"].startswith("memo says")
    assert obs in env.observation_space
    # the space really checks: a list (not a tuple), a missing key or a non-string content fail
    space = chat_space()
    assert list(obs) not in space
    assert ({"role": "user"},) not in space
    assert ({"role": "user", "content": 3},) not in space
    check_env(env, skip_render_check=True)


def test_discrete_actions_drive_a_text_env_with_vectors():
    env = DiscreteActions(gym.make("idagym/Lookup-v0"), ["read", "alice", "bob", "carol", "dave"], obs_dim=32)
    assert env.action_space == gym.spaces.Discrete(5)
    obs, info = env.reset(seed=3)
    assert obs.shape == (64,) and obs.dtype == np.float32 and obs in env.observation_space
    task_half = obs[32:].copy()
    assert np.array_equal(obs[:32], task_half)  # at reset the latest text is the task itself
    obs, reward, terminated, truncated, info = env.step(np.int64(0))  # "read"
    assert info["text"].startswith("memo says") and obs in env.observation_space
    assert np.array_equal(obs[32:], task_half)  # the task stays in view
    assert not np.array_equal(obs[:32], task_half)
    name = info["text"].split()[-1]
    _, reward, terminated, _, info = env.step(env.actions.index(name))
    assert terminated and reward == 1.0 and info["success"]
    with pytest.raises(ValueError, match="action must be an int"):
        env.reset()
        env.step(5)
    check_env(env, skip_render_check=True)


def test_discrete_actions_without_task_and_bad_menus():
    env = DiscreteActions(gym.make("idagym/Lookup-v0"), ["read"], obs_dim=16, include_task=False)
    assert env.reset(seed=0)[0].shape == (16,)
    with pytest.raises(ValueError, match="non-empty list of strings"):
        DiscreteActions(gym.make("idagym/Lookup-v0"), [])


def test_hashed_features_are_the_same_in_every_process():
    # Python's str hash is salted per process; the features must not be (vector envs, saved models)
    text = "memo says pay bob"
    code = f"from idagym.wrappers import hashed_bag_of_words as h; print(h({text!r}, 16).tolist())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123"})
    assert eval(out.stdout) == hashed_bag_of_words(text, 16).tolist()
    assert hashed_bag_of_words("Bob bob", 16).max() == pytest.approx(np.log1p(2))  # case-folded counts


@pytest.mark.parametrize("limit,turns", [(1, 1), (2, 2), (3, 3), (5, 3)])
def test_step_limit_below_max_turns_ends_the_episode_scored(limit, turns):
    # Lookup's max_turns is 3: a lower max_episode_steps becomes the env's own limit
    env = gym.make("idagym/Lookup-v0", max_episode_steps=limit)
    env.reset(seed=0)
    for turn in range(1, turns + 1):
        _, reward, terminated, truncated, info = env.step("read")
        assert (terminated, truncated) == (False, turn == turns)
    assert reward == 0.0 and info["success"] is False and info["num_tests"] == 1
    assert env.unwrapped.max_turns == min(limit, 3)


def test_step_limit_reaches_user_envs_and_vector_envs():
    idagym.register_env("test/EchoLimited-v0", Echo, max_turns=10)
    env = gym.make("test/EchoLimited-v0", max_episode_steps=2)
    env.reset(seed=0)
    assert env.step("hi")[3] is False
    _, reward, terminated, _, info = env.step("stop")  # solved on the limit's own step (TimeLimit marks it truncated too)
    assert terminated is True and reward == 1.0 and info["success"] is True
    envs = gym.make_vec("idagym/Lookup-v0", num_envs=2, max_episode_steps=1)
    envs.reset(seed=0)
    _, _, _, truncated, info = envs.step(("read", "read"))
    assert truncated.all() and info["_success"].all() and not info["success"].any()
    envs.close()
