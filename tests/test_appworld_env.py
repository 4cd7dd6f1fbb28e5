"""AppWorldEnv on the real AppWorld engine: observations, rewards, limits, Gymnasium conformance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import idagym
from idagym.appworld import AppWorldEnv
from idagym.appworld.tasks import ground_truth_code

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="module")
def env(root: str):
    env = AppWorldEnv(root=root, max_turns=5, step_timeout_s=20)
    yield env
    env.close()


@pytest.fixture(autouse=True)
def _restore(env: AppWorldEnv):
    yield
    env.max_turns, env.reward_mode = 5, "fraction"


def test_reset_observation_has_task_supervisor_and_rules(env: AppWorldEnv, root: str, task_id: str):
    obs, info = env.reset(options={"task_id": task_id})
    specs = json.loads(Path(root, "data", "tasks", task_id, "specs.json").read_text())
    assert info == {"task_id": task_id, "turn": 0}
    assert specs["instruction"] in obs
    sup = specs["supervisor"]
    for value in (sup["first_name"], sup["last_name"], sup["email"], sup["phone_number"]):
        assert value in obs
    for hint in ("show_app_descriptions()", "show_api_descriptions(", "show_api_doc(", "show_account_passwords()", "complete_task("):
        assert hint in obs, hint
    assert env.observation_space.contains(obs)


def test_worked_example_is_a_train_task_never_the_one_at_hand(env: AppWorldEnv, root: str):
    env.worked_example = True
    try:
        train = [t for t in env.task_ids("train") if t not in env.duplicated_task_ids("train")]
        shown = {}
        for task in (env.task_ids("dev")[0], env.task_ids("challenge")[0], train[0], train[1]):
            obs, _ = env.reset(options={"task_id": task})
            shown[task] = [t for t in train[:2] if ground_truth_code(t, root=root).strip() in obs]
            assert len(shown[task]) == 1 and shown[task][0] != task
            assert ground_truth_code(task, root=root).strip() not in obs  # never the answer to the task at hand
        assert shown[train[0]] == [train[1]] and shown[train[1]] == [train[0]]
    finally:
        env.worked_example = False
    obs, _ = env.reset(options={"task_id": train[1]})
    assert ground_truth_code(train[0], root=root).strip() not in obs  # off by default


def test_ground_truth_episode_succeeds(env: AppWorldEnv, task_id: str):
    env.reset(options={"task_id": task_id})
    (code,) = env.solution(task_id)
    assert code == ground_truth_code(task_id, root=env.root)
    obs, reward, terminated, truncated, info = env.step(code)
    assert (reward, terminated, truncated) == (1.0, True, False), obs
    assert info["success"] is True and info["pass_count"] == info["num_tests"] > 0
    assert "PASS" in info["evaluation"] and "FAIL" not in info["evaluation"]
    with pytest.raises(RuntimeError, match="reset"):
        env.step("print(1)")


def test_do_nothing_episode_fails(env: AppWorldEnv, task_id: str):
    env.reset(options={"task_id": task_id})
    obs, reward, terminated, truncated, info = env.step("apis.supervisor.complete_task()")
    assert terminated and not truncated
    assert info["success"] is False and reward < 1.0
    assert "FAIL" in info["evaluation"]


def test_binary_reward_mode(env: AppWorldEnv, task_id: str):
    env.reward_mode = "binary"
    env.reset(options={"task_id": task_id})
    *_, reward, _, _, info = env.step("apis.supervisor.complete_task()")
    assert reward == 0.0 and not info["success"]
    env.reset(options={"task_id": task_id})
    *_, reward, _, _, info = env.step(env.solution(task_id)[0])
    assert reward == 1.0 and info["success"]


def test_turn_limit_truncates(env: AppWorldEnv, task_id: str):
    env.max_turns = 2
    env.reset(options={"task_id": task_id})
    obs, reward, terminated, truncated, info = env.step("print(6 * 7)")
    assert obs.strip() == "42" and not (terminated or truncated) and reward == 0.0
    obs, reward, terminated, truncated, info = env.step("x = 1")
    assert truncated and not terminated and "error" not in info
    assert info["turn"] == 2 and info["num_tests"] > 0 and not info["success"]


def test_world_state_persists_between_steps(env: AppWorldEnv, task_id: str):
    env.reset(options={"task_id": task_id})
    env.step("apps = apis.api_docs.show_app_descriptions()")
    obs, *_ = env.step("print(sorted(a['name'] for a in apps))")
    assert "supervisor" in obs and "spotify" in obs


def test_seed_picks_task_reproducibly(env: AppWorldEnv):
    first, info1 = env.reset(seed=7)
    again, info2 = env.reset(seed=7)
    assert first == again and info1["task_id"] == info2["task_id"] in env.task_ids("train")


def test_unknown_task_is_a_clear_error_then_reset_works(env: AppWorldEnv, task_id: str):
    with pytest.raises(ValueError, match="no_such_task"):
        env.reset(options={"task_id": "no_such_task"})
    obs, info = env.reset(options={"task_id": task_id})
    assert info["task_id"] == task_id


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="reward_mode"):
        AppWorldEnv(reward_mode="best")
    with pytest.raises(ValueError, match="step_timeout_s"):
        AppWorldEnv(step_timeout_s=0)


def test_check_env_passes(env: AppWorldEnv):
    env.max_turns = 3
    check_env(env)  # random Unicode actions, same seed -> same observation, spaces


def test_registered_with_gymnasium(root: str):
    assert "idagym/AppWorld-v0" in idagym.idagym_env_ids()
    env = gym.make("idagym/AppWorld-v0", root=root, max_turns=3)
    assert isinstance(env.unwrapped, AppWorldEnv) and env.unwrapped.max_turns == 3
    env.close()  # never reset: no worker was started


def test_envs_cli_lists_appworld():
    out = subprocess.run([sys.executable, "-m", "idagym.cli", "envs"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("idagym/AppWorld-v0"))
    assert "AppWorld" in line.split(None, 1)[1]


def test_play_cli_runs_ground_truth_from_stdin(root: str, task_id: str):
    code = ground_truth_code(task_id, root=root)
    stdin = f"print('hello from play')\n/\n{code}\n/\n"
    out = subprocess.run(
        [sys.executable, "-m", "idagym.cli", "play", "--task", task_id, "--root", root],
        input=stdin, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "hello from play" in out.stdout
    assert "episode terminated; reward 1.000" in out.stdout
    assert "tests passed" in out.stdout and "PASS" in out.stdout


def test_tasks_are_graded_by_difficulty(env: AppWorldEnv):
    levels = {env.task_difficulty(t) for t in env.task_ids("dev")}
    assert levels <= {1, 2, 3} and len(levels) > 1
    assert env.task_difficulty("no_such_task") is None
