"""The DigitalEnv base contract: reset/step semantics, rewards, truncation, registration errors."""

from __future__ import annotations

import gymnasium as gym
import pytest

import idagym
from idagym.core import AnyText, DigitalEnv, EnvFailure, Evaluation, truncate_text


class Counter(DigitalEnv):
    """Count to a target with `inc`; `done` ends the task."""

    def __init__(self, target: int = 2, fail_on: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.target, self.fail_on = target, fail_on

    def task_ids(self, split: str) -> list[str]:
        return [f"count-{n}" for n in range(1, 4)]

    def open_task(self, task_id: str, seed: int | None) -> str:
        self.value, self.finished = 0, False
        self.goal = int(task_id.split("-")[1])
        return f"count to {self.goal}"

    def execute(self, action: str) -> str:
        if action == self.fail_on:
            raise EnvFailure("worker crashed")
        if action == "inc":
            self.value += 1
        elif action == "done":
            self.finished = True
        return f"value {self.value}"

    def task_completed(self) -> bool:
        return self.finished

    def evaluate(self) -> Evaluation:
        return Evaluation(pass_count=int(self.value == self.goal) + 1, num_tests=2)


def test_anytext_accepts_unicode_and_checks_length():
    space = AnyText(5)
    assert space.contains("héllo")
    assert not space.contains("toolong")
    assert not space.contains(3)


def test_truncate_text_keeps_head_and_tail_with_marker():
    text = "a" * 100 + "b" * 100
    out = truncate_text(text, 80)
    assert len(out) <= 80 + 10 and out.startswith("a") and out.endswith("b")
    assert "truncated" in out and truncate_text("short", 80) == "short"


def test_episode_reward_only_at_end_and_info_fields():
    env = Counter(max_turns=5)
    obs, info = env.reset(seed=0, options={"task_id": "count-1"})
    assert obs == "count to 1" and info == {"task_id": "count-1", "turn": 0}
    obs, reward, terminated, truncated, info = env.step("inc")
    assert (reward, terminated, truncated, info["turn"]) == (0.0, False, False, 1)
    obs, reward, terminated, truncated, info = env.step("done")
    assert terminated and not truncated and reward == 1.0
    assert info["success"] and info["pass_count"] == 2 and info["num_tests"] == 2
    with pytest.raises(RuntimeError, match="reset"):
        env.step("inc")


def test_turn_limit_truncates_and_binary_reward():
    env = Counter(max_turns=2, reward_mode="binary")
    env.reset(options={"task_id": "count-3"})
    env.step("inc")
    _, reward, terminated, truncated, info = env.step("inc")
    assert truncated and not terminated and reward == 0.0 and info["pass_count"] == 1


def test_env_failure_ends_truncated_with_error_and_next_reset_works():
    env = Counter(fail_on="boom")
    env.reset(options={"task_id": "count-1"})
    obs, _, terminated, truncated, info = env.step("boom")
    assert truncated and not terminated and info["error"] == "worker crashed" and "worker crashed" in obs
    assert env.reset(options={"task_id": "count-2"})[0] == "count to 2"


def test_non_string_action_gets_an_observation():
    env = Counter()
    env.reset(options={"task_id": "count-1"})
    obs, *_ = env.step(42)
    assert "must be a string" in obs


def test_seeded_reset_samples_same_task():
    env = Counter()
    assert env.reset(seed=3)[1]["task_id"] == env.reset(seed=3)[1]["task_id"]


def test_register_env_rejects_non_digital_envs_and_lists_registered_ones():
    # missing hooks, duplicate ids and bad rewards: tests/test_custom_env.py
    with pytest.raises(TypeError, match="subclass"):
        idagym.register_env("test/NotDigital-v0", dict)
    idagym.register_env("test/Counter-v0", Counter, target=2)
    env = gym.make("test/Counter-v0")
    assert env.reset(seed=0)[0].startswith("count to")
    assert "test/Counter-v0" in idagym.idagym_env_ids()
    env.close()
