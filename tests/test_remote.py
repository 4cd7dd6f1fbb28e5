"""Remote mode: `idagym serve` runs AppWorld's environment server; AppWorldEnv(remote_url=...) uses it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest

from idagym.appworld import AppWorldEnv
from idagym.appworld.landlock import abi_version
from idagym.appworld.tasks import ground_truth_code, load_split, suite_root
from idagym.net import free_port

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="module")
def server():
    root, port = str(suite_root()), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "idagym.cli", "serve", "--port", str(port), "--root", root],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(url + "/", timeout=1)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"server did not start: {proc.stdout.read()[-2000:]}")
            time.sleep(0.3)
    yield root, url
    proc.terminate()
    proc.wait(timeout=20)


def test_ground_truth_episode_over_http(server):
    root, url = server
    task_id = load_split("train", root=root)[0]
    env = AppWorldEnv(remote_url=url, root=root, step_timeout_s=60)
    try:
        obs, info = env.reset(options={"task_id": task_id})
        assert "show_api_doc" in obs and info["task_id"] == task_id
        obs, reward, terminated, truncated, info = env.step("print(1 + 1)")
        assert obs.strip() == "2" and not (terminated or truncated)
        obs, reward, terminated, truncated, info = env.step(ground_truth_code(task_id, root=root))
        assert (reward, terminated, truncated, info["success"]) == (1.0, True, False, True), obs
        env.reset(options={"task_id": task_id})
        *_, reward, terminated, _, info = env.step("apis.supervisor.complete_task()")
        assert terminated and not info["success"] and reward < 1.0
    finally:
        env.close()


def test_unreachable_server_is_a_clean_failure():
    env = AppWorldEnv(remote_url=f"http://127.0.0.1:{free_port()}", root=str(suite_root()), step_timeout_s=5)
    with pytest.raises(Exception, match="did not answer"):
        env.reset(options={"task_id": "any"})
    env.close()


def test_remote_episodes_keep_the_reward_out_of_reach(server):
    """Remote mode gives the same guarantees: a patched scorer and poisoned builtins earn nothing and
    do not reach the next episode of the same session."""
    from test_reward_integrity import NOOP, PATCH_SCORING, episode

    root, url = server
    env = AppWorldEnv(remote_url=url, root=root, step_timeout_s=30, max_turns=5)
    try:
        task_id = load_split("train", root=root)[0]
        _, noop_reward, noop_info = episode(env, task_id, [NOOP])
        outputs, reward, info = episode(env, task_id, [PATCH_SCORING + "\nbuiltins = __import__('builtins')\nbuiltins.print = None", NOOP])
        assert "HACK RAN" in outputs[0] and env.isolation == ("landlock" if abi_version() else "audit-hook")
        assert (reward, info["evaluation"]) == (noop_reward, noop_info["evaluation"])
        outputs, reward, info = episode(env, task_id, ["print(2 + 2)", NOOP])
        assert outputs[0].strip() == "4" and reward == noop_reward
    finally:
        env.close()
