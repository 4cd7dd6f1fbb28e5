"""Adding an environment from outside the package: the bank example, and the errors a user meets."""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import idagym
from idagym import DigitalEnv, Evaluation

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: `examples.` imports
from examples.custom_env import bank_env  # noqa: E402  (registers mybank/Bank-v0)

MENU = bank_env.VIEWS + bank_env.NAMES


def make_bank(**kwargs) -> gym.Env:
    return gym.make(bank_env.ENV_ID, **kwargs)


def test_bank_is_registered_and_passes_the_gymnasium_checker():
    assert bank_env.ENV_ID in idagym.idagym_env_ids()
    env = make_bank()
    check_env(env.unwrapped, skip_render_check=True)
    assert env.unwrapped.describe_apis()
    assert set(env.unwrapped.task_ids("train")).isdisjoint(env.unwrapped.task_ids("test"))


def test_ground_truth_solves_every_task_and_the_payee_varies():
    env = make_bank()
    targets = set()
    for i, task_id in enumerate(env.unwrapped.task_ids("train") + env.unwrapped.task_ids("dev")):
        env.reset(seed=i, options={"task_id": task_id})
        targets.add(env.unwrapped.target())
        for action in env.unwrapped.solution(task_id):
            _, reward, terminated, truncated, info = env.step(action)
        assert terminated and not truncated and reward == 1.0, info["evaluation"]
        assert info["pass_count"] == info["num_tests"] == 3
    assert len(targets) > 1  # drawn per episode, so guessing one name cannot win


def test_paying_the_wrong_friend_fails_the_state_checks():
    env = make_bank(reward_mode="fraction")
    env.reset(seed=0, options={"task_id": "bill_0"})
    bank = env.unwrapped.bank
    wrong = bank.records["history"]  # the lender, not the biller
    env.step("history")
    _, reward, terminated, _, info = env.step(wrong)
    assert terminated and reward == 0.0
    assert "FAIL nothing else changed" in info["evaluation"]
    assert f"FAIL {bank.records['inbox']} received" in info["evaluation"]


def test_a_name_not_on_screen_is_refused_and_changes_nothing():
    env = make_bank(reward_mode="fraction", max_turns=2)
    env.reset(seed=0, options={"task_id": "loan_0"})
    before = env.unwrapped.bank.snapshot()
    obs, *_ = env.step("alice")
    assert obs.startswith("error alice is not on screen")
    assert env.unwrapped.bank.snapshot() == before
    obs, reward, terminated, truncated, info = env.step("withdraw everything")
    assert obs.startswith("error unknown command")
    # turn limit: truncated; only "nothing else changed" passes (1 of 3)
    assert truncated and not terminated and reward == pytest.approx(1 / 3)


def test_every_word_the_bank_prints_is_in_its_vocabulary():
    # the word-level tokenizer is built from vocabulary(): an unknown word would be unreadable
    env = make_bank(max_turns=6)
    vocab = set(env.unwrapped.vocabulary())
    env.action_space.seed(0)
    for episode in range(60):
        obs, _ = env.reset(seed=episode)
        seen = set(obs.split())
        done = False
        step = 0
        while not done:
            action = MENU[(episode + step * 7) % len(MENU)] if step % 3 else "nonsense"
            obs, _, terminated, truncated, _ = env.step(action)
            seen |= set(obs.split())
            done, step = terminated or truncated, step + 1
        assert seen <= vocab, seen - vocab


# ---- the errors someone adding an environment meets -------------------------------------------
class Minimal(DigitalEnv):
    def task_ids(self, split: str) -> list[str]:
        return ["t"]

    def open_task(self, task_id: str, seed: int | None) -> str:
        return "go"

    def execute(self, action: str) -> str:
        return "ok"

    def task_completed(self) -> bool:
        return True

    def evaluate(self) -> Evaluation:
        return Evaluation(1, 1)


class NoWorld(DigitalEnv):
    def task_ids(self, split):
        return ["t"]


def test_missing_hooks_are_named():
    with pytest.raises(TypeError, match=r"NoWorld does not implement open_task, execute, task_completed, evaluate"):
        idagym.register_env("user/NoWorld-v0", NoWorld)
    assert "user/NoWorld-v0" not in gym.registry
    # a "module:Class" entry point is only imported by gym.make: the same message comes then
    idagym.register_env("user/NoWorldLazy-v0", f"{__name__}:NoWorld")
    with pytest.raises(TypeError, match=r"NoWorld does not implement open_task, execute"):
        gym.make("user/NoWorldLazy-v0")


def test_duplicate_id_is_refused_and_the_first_registration_kept():
    idagym.register_env("user/Minimal-v0", Minimal)
    with pytest.raises(ValueError, match="'user/Minimal-v0' is already registered"):
        idagym.register_env("user/Minimal-v0", bank_env.BankEnv)
    assert isinstance(gym.make("user/Minimal-v0").unwrapped, Minimal)
    with pytest.raises(ValueError, match="already registered"):
        idagym.register_env(bank_env.ENV_ID, bank_env.BankEnv)  # a module imported twice would do this


@pytest.mark.parametrize("pass_count", [-1, 2])
def test_reward_outside_unit_interval_is_refused(pass_count):
    class Bad(Minimal):
        def evaluate(self) -> Evaluation:
            return Evaluation(pass_count, 1)

    env = Bad()
    env.reset()
    with pytest.raises(ValueError, match=r"Bad.evaluate\(\) gave reward .* outside \[0, 1\]"):
        env.step("x")


def test_evaluate_must_return_an_evaluation():
    class Tuple(Minimal):
        def evaluate(self):
            return (1, 1)

    env = Tuple()
    env.reset()
    with pytest.raises(TypeError, match=r"Tuple.evaluate\(\) must return idagym.Evaluation, got tuple"):
        env.step("x")


def test_observations_that_are_not_strings_are_refused():
    class BytesOpen(Minimal):
        def open_task(self, task_id, seed):
            return b"go"

    class DictExecute(Minimal):
        def execute(self, action):
            return {"out": "ok"}

    with pytest.raises(TypeError, match=r"BytesOpen.open_task\(\) must return a str observation, got bytes"):
        BytesOpen().reset()
    env = DictExecute()
    env.reset()
    with pytest.raises(TypeError, match=r"DictExecute.execute\(\) must return a str observation, got dict"):
        env.step("x")
