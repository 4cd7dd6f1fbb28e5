"""idagym envs inside Gymnasium's vector envs (with their defaults) and tianshou's SubprocVectorEnv."""

from __future__ import annotations

import os
from functools import partial

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AsyncVectorEnv
from gymnasium.vector.utils import create_shared_memory, read_from_shared_memory, write_to_shared_memory

from idagym.appworld import AppWorldEnv
from idagym.appworld.tasks import ground_truth_code, load_split, suite_root
from idagym.core import AnyText

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="module")
def setup():
    root = str(suite_root())
    task_id = load_split("train", root=root)[0]
    return root, task_id, ground_truth_code(task_id, root=root)


def test_async_vector_env(setup):
    root, task_id, code = setup
    make = partial(AppWorldEnv, root=root, max_turns=3, step_timeout_s=30)
    envs = AsyncVectorEnv([make, make])  # the default shared memory carries the text
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


@pytest.mark.parametrize("context", [None, "spawn"])
def test_make_vec_async_with_gymnasium_defaults(context):
    vector_kwargs = {"context": context} if context else {}
    envs = gym.make_vec("idagym/Lookup-v0", num_envs=2, vectorization_mode="async", vector_kwargs=vector_kwargs)
    try:
        obs, _ = envs.reset(seed=0)
        assert isinstance(obs, tuple) and all(o.startswith("task ") for o in obs)
        obs, *_ = envs.step(("read", "read"))
        assert all(o.startswith("memo says") for o in obs)  # fresh text each step, not the first one
        _, rewards, terminated, _, info = envs.step(tuple(o.split()[-1] for o in obs))
        assert terminated.all() and info["success"].all()
        np.testing.assert_allclose(rewards, [1.0, 1.0])
    finally:
        envs.close()


def test_anytext_shared_memory_round_trips_any_text():
    space = AnyText(max_length=8)
    memory = create_shared_memory(space, n=2)
    view = read_from_shared_memory(space, memory, n=2)
    for index, text in enumerate(["naïve ✓", "\ud800 x"]):  # a lone surrogate too (undecodable output)
        write_to_shared_memory(space, index, text, memory)
    assert tuple(view) == ("naïve ✓", "\ud800 x") and view[1:] == ("\ud800 x",)
    write_to_shared_memory(space, 0, "", memory)
    assert view[0] == ""  # read afresh from the buffer on each access
    with pytest.raises(ValueError, match="9 characters exceeds the space's max_length 8"):
        write_to_shared_memory(space, 0, "x" * 9, memory)
