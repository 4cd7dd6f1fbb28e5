"""Hostile and broken actions: each ends in an observation or a clean truncation within the step
limit, nothing leaves the sandbox, a lost sandbox costs only its episode (still scored on its app
state), a lost worker is replaced, and no process outlives the env."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from idagym.appworld import AppWorldEnv

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

STEP_LIMIT_S = 4.0  # parent's wall-clock limit; AppWorld's own alarm fires at 3 s
MAX_OBS = 4_000
PASSWD_LINE = "root:x:0:0"  # the first line of /etc/passwd: must never reach an observation


def _gone(pid: int, within_s: float = 10.0) -> bool:
    """The process has exited (a zombie not yet reaped by its parent counts as exited)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def env(root: str):
    env = AppWorldEnv(root=root, max_turns=50, step_timeout_s=STEP_LIMIT_S, max_obs_chars=MAX_OBS, memory_limit_mb=2048)
    yield env
    pid = env._world.pid if env._world else None
    env.close()
    assert pid is None or _gone(pid)


@pytest.fixture(scope="module")
def noop_reward(env: AppWorldEnv, task_id: str) -> float:
    """The reward of an episode whose one action does nothing, on the same task."""
    env.reset(options={"task_id": task_id})
    env.step("pass")
    reward = env.unwrapped._final_reward({})
    env._done = True
    return reward


@pytest.fixture
def fresh(env: AppWorldEnv, task_id: str) -> AppWorldEnv:
    """The shared env at the start of an episode (reset only when the last one ended)."""
    if env._done:
        env.reset(options={"task_id": task_id})
    return env


HOSTILE = [
    "while True: pass",
    "import os",
    "import os\nos.system('cat /etc/passwd')",
    "import subprocess\nprint(subprocess.run(['cat', '/etc/passwd']).stdout)",
    "print(open('/etc/passwd').read())",
    "print(__import__('builtins').open('/etc/passwd').read())",
    "import pathlib\nprint(pathlib.Path('/etc/passwd').read_text())",
    "print('x' * 50_000_000)",
    "raise SystemExit",
    "raise SystemExit(3)",
    "exit()",
    "quit()",
    "import sys\nsys.exit(1)",
    "import os\nos._exit(1)",
    "def f(:\n  pass",
    "",
    "   \n\n",
    "x = bytearray(3 * 1024**3)",  # over the 2 GiB address-space limit
    "raise KeyboardInterrupt",
    "print('\\udcff surrogate')",
]


@pytest.mark.parametrize("code", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_action_gives_observation_or_clean_truncation(fresh: AppWorldEnv, code: str, noop_reward: float):
    start = time.monotonic()
    obs, reward, terminated, truncated, info = fresh.step(code)
    elapsed = time.monotonic() - start
    assert elapsed < STEP_LIMIT_S + 3.0, f"step took {elapsed:.1f} s"
    assert isinstance(obs, str) and len(obs) <= MAX_OBS
    assert PASSWD_LINE not in obs
    assert not terminated
    if truncated:  # the sandbox was lost: a one-line error, scored as the app state stands
        assert info["error"] and "\n" not in info["error"]
        assert reward == noop_reward and info["num_tests"] > 0
    else:
        obs2, *_ = fresh.step("print('still alive')")
        assert obs2.strip() == "still alive"


def test_infinite_loop_is_stopped_by_appworld_timeout(fresh: AppWorldEnv):
    obs, _, _, truncated, info = fresh.step("n = 0\nwhile True: n += 1")
    assert "timed out" in obs and not truncated


def test_huge_print_is_truncated_with_marker(fresh: AppWorldEnv):
    obs, *_ = fresh.step("print('y' * 50_000_000)")
    assert "output truncated" in obs and "50000001" in obs  # 50M + newline, counted truly


def test_non_string_action(fresh: AppWorldEnv):
    obs, _, terminated, truncated, _ = fresh.step(12345)  # type: ignore[arg-type]
    assert "must be a string" in obs and not (terminated or truncated)


def test_hang_in_c_code_costs_only_the_episode(fresh: AppWorldEnv, task_id: str, noop_reward: float):
    worker_pid = fresh._world.pid
    start = time.monotonic()
    obs, reward, terminated, truncated, info = fresh.step("sum(range(10**13))")  # no bytecode boundary: SIGALRM can't stop it
    assert time.monotonic() - start < STEP_LIMIT_S + 2.0
    assert truncated and not terminated
    assert "killed" in info["error"] and info["num_tests"] > 0 and reward == noop_reward, fresh._failed  # scored all the same
    obs, info = fresh.reset(options={"task_id": task_id})
    assert fresh._world.pid == worker_pid  # the worker lives on: only the episode's sandbox was killed
    assert fresh.step("print(2 + 2)")[0].strip() == "4"


def test_crashed_worker_truncates_and_is_replaced(fresh: AppWorldEnv, task_id: str):
    pid = fresh._world.pid
    os.kill(pid, signal.SIGKILL)  # a segfault or the OOM killer looks the same to the parent
    assert _gone(pid)
    obs, reward, terminated, truncated, info = fresh.step("print(1)")
    assert truncated and "died" in info["error"]
    fresh.reset(options={"task_id": task_id})
    assert fresh.step("print(1)")[0].strip() == "1"


SCRIPT = """
import os, sys
from idagym.appworld import AppWorldEnv
env = AppWorldEnv(root={root!r}, step_timeout_s=60)
env.reset(options={{"task_id": {task_id!r}}})
print(env._world.pid, flush=True)
if sys.argv[1] == "hang":
    env.step("sum(range(10**13))")
# "leave": exit without close(): the finalizer must still end the worker
"""


@pytest.mark.parametrize("mode", ["hang", "leave"])
def test_no_worker_outlives_its_parent(root: str, task_id: str, mode: str):
    script = textwrap.dedent(SCRIPT.format(root=root, task_id=task_id))
    proc = subprocess.Popen([sys.executable, "-c", script, mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pid = int(proc.stdout.readline())
        if mode == "hang":
            time.sleep(1.0)
            proc.send_signal(signal.SIGINT)  # Ctrl-C mid-step
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    if mode == "hang":
        assert "KeyboardInterrupt" in err
    else:
        assert proc.returncode == 0, err[-2000:]
    assert _gone(pid, within_s=5.0)
