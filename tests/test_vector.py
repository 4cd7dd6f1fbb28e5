"""AppWorldEnv inside Gymnasium's AsyncVectorEnv and tianshou's SubprocVectorEnv."""

from __future__ import annotations

import os
from functools import partial

import numpy as np
import pytest
from gymnasium.vector import AsyncVectorEnv

from idagym.appworld_env import AppWorldEnv
from idagym.tasks import ground_truth_code, load_split, suite_root

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="module")
def setup():
    root = str(suite_root())
    task_id = load_split("train", root=root)[0]
    return root, task_id, ground_truth_code(task_id, root=root)


def test_async_vector_env(setup):
    root, task_id, code = setup
    make = partial(AppWorldEnv, root=root, max_turns=3, step_timeout_s=30)
    envs = AsyncVectorEnv([make, make], shared_memory=False)
    try:
        obs, info = envs.reset(seed=0, options={"task_id": task_id})
        assert all(isinstance(o, str) and "complete_task" in o for o in obs)
        obs, rewards, terminated, truncated, info = envs.step(("print('left')", code))
        assert obs[0].strip() == "left"
        assert list(terminated) == [False, True] and list(truncated) == [False, False]
        np.testing.assert_allclose(rewards, [0.0, 1.0])
    finally:
        envs.close()


def test_tianshou_subproc_vector_env(setup):
    from tianshou.env import SubprocVectorEnv

    root, task_id, code = setup
    make = partial(AppWorldEnv, root=root, max_turns=3, step_timeout_s=30)
    envs = SubprocVectorEnv([make, make])
    try:
        obs, info = envs.reset(options={"task_id": task_id})
        assert len(obs) == 2 and all("complete_task" in o for o in obs)
        obs, rewards, terminated, truncated, info = envs.step(np.array(["print('left')", code], dtype=object))
        assert obs[0].strip() == "left"
        assert list(terminated) == [False, True]
        np.testing.assert_allclose(rewards, [0.0, 1.0])
    finally:
        envs.close()
