"""Collector: groups, batching, outcomes, and robustness to failing environments."""

from __future__ import annotations

import os

import gymnasium as gym
import pytest
import torch

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
torch.set_num_threads(1)

import idagym  # noqa: E402,F401  (registers idagym/Lookup-v0)
from idagym.agents.config import ModelConfig, PolicyConfig  # noqa: E402
from idagym.agents.hf_policy import TransformersPolicy  # noqa: E402
from idagym.agents.scripted import ScriptedPolicy  # noqa: E402
from idagym.collector import Collector  # noqa: E402
from idagym.core import DigitalEnv, EnvFailure, Evaluation  # noqa: E402


class FlakyEnv(DigitalEnv):
    """Task 'ok' is solved by 'done'; 'boom' raises in step, 'fail' loses its world, 'noreset' cannot open."""

    def __init__(self):
        super().__init__(max_turns=2)
        self._finished = False

    def task_ids(self, split: str) -> list[str]:
        return ["ok", "boom", "fail", "noreset"]

    def open_task(self, task_id: str, seed: int | None) -> str:
        if task_id == "noreset":
            raise RuntimeError("cannot open")
        self._finished = False
        return f"task {task_id}"

    def execute(self, action: str) -> str:
        if self.task_id == "boom":
            raise RuntimeError("bug in the env")
        if self.task_id == "fail":
            raise EnvFailure("worker died")
        self._finished = action == "done"
        return "ok"

    def task_completed(self) -> bool:
        return self._finished

    def evaluate(self) -> Evaluation:
        return Evaluation(int(self._finished), 1)


def test_trajectories_record_the_task_template_where_the_env_has_one():
    class Templated(FlakyEnv):
        def task_template(self, task_id: str) -> str | None:
            return f"family-{task_id}"

    for env_cls, expected in [(Templated, "family-ok"), (FlakyEnv, None)]:
        collector = Collector(env_cls, ScriptedPolicy(lambda task_id: ["done"]), num_envs=1, progress=False)
        (traj,) = collector.collect(["ok"])
        collector.close()
        assert traj.success and traj.info.get("template") == expected


def test_env_errors_never_crash_collection():
    collector = Collector(FlakyEnv, ScriptedPolicy(lambda task_id: ["done"]), num_envs=2, progress=False)
    trajs = collector.collect(["ok", "boom", "fail", "noreset", "ok"], group_size=2)
    collector.close()
    by_task = {t.task_id: t for t in trajs}
    assert [t.group_id for t in trajs] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert by_task["ok"].success and by_task["ok"].terminated and by_task["ok"].reward == 1.0
    for task, needle in [("boom", "bug in the env"), ("fail", "worker died"), ("noreset", "cannot open")]:
        traj = by_task[task]
        assert traj.truncated and not traj.success and traj.reward == 0.0 and needle in traj.error, task


def test_lookup_groups_batches_and_outcomes():
    env_kwargs = {"num_names": 4}
    collector = Collector("idagym/Lookup-v0", num_envs=16, env_kwargs=env_kwargs, progress=False)
    policy = TransformersPolicy.from_config(
        ModelConfig(name="tiny-word"), PolicyConfig(max_new_tokens=2, action_format="raw"), env=collector.envs[0]
    )
    collector.policy = policy
    tasks = collector.task_ids("train")
    trajs = collector.collect(tasks, group_size=4, seed=7)
    collector.close()
    assert len(trajs) == 4 * len(tasks)
    assert [t.task_id for t in trajs] == [task for task in tasks for _ in range(4)]
    assert all(t.done and t.num_generated > 0 for t in trajs)
    unk = policy.tokenizer.unk_token_id
    # every word the env says is in the tokenizer's vocabulary
    assert all(i != unk for t in trajs for i, m in zip(t.input_ids, t.loss_mask, strict=True) if m == 0)
    # 16 envs and 32 episodes: each act() call answered many episodes at once
    assert policy.stats["forward_calls"] < sum(t.num_generated for t in trajs) / 4
    # the hidden name is drawn per episode from the reset seed: K rollouts of one task differ
    scripted = Collector("idagym/Lookup-v0", num_envs=1, env_kwargs=env_kwargs, progress=False)
    scripted.policy = ScriptedPolicy(scripted.envs[0].unwrapped.solution)
    solved = scripted.collect(["pay"], group_size=8, seed=0)
    scripted.close()
    assert all(t.success and t.reward == 1.0 and t.terminated for t in solved)
    assert len({t.turns[1].observation for t in solved}) > 1


def test_policy_needed():
    collector = Collector(lambda: gym.make("idagym/Lookup-v0"), num_envs=1, progress=False)
    with pytest.raises(ValueError, match="no policy"):
        collector.collect(["pay"])
    collector.close()
