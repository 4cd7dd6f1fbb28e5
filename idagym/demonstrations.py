"""Demonstrations for the supervised warm start: token-in/token-out trajectories of solved tasks.

Both sources serve only tasks of the training split:
- `SolutionDemonstrations`: the environment's ground-truth solutions, played in the real
  environment through `DemonstrationPolicy`, so that the prompt, chat template, loss mask and
  end-of-turn token are the policy's own; only demonstrations that earn full reward are kept.
- `FileDemonstrations`: trajectories a user saved as JSON lines in the buffer's format (e.g.
  filtered successful rollouts from `trajectories.jsonl`), checked against the tokenizer and split.

Each has the collector's `collect(task_ids, group_size, seed)`, so the trainer treats them alike.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

from idagym.agents.base import Policy
from idagym.buffer import Trajectory


class DemonstrationError(ValueError):
    """A demonstration file that does not match the tokenizer or the environment (one line)."""


class DemonstrationPolicy(Policy):
    """Plays `solution(task_id)` one action a turn through `policy`'s token bookkeeping
    (`TransformersPolicy.demonstrate`): the trajectory holds exactly the tokens the policy would
    have generated to take those actions. As with the scripted agent, the solution is read right
    after the env's reset, so per-episode solutions need one env per collector."""

    def __init__(self, policy: Any, solution: Callable[[str], list[str]]):
        self.policy, self.solution = policy, solution
        self._scripts: dict[int, list[str]] = {}

    def set_seed(self, seed: int) -> None:
        self.policy.set_seed(seed)

    def start(self, task_id: str, group_id: int, observation: str) -> Trajectory:
        traj = self.policy.start(task_id, group_id, observation)
        self._scripts[id(traj)] = list(self.solution(task_id))
        traj.info["demonstration"] = True
        return traj

    def act(self, trajectories: list[Trajectory]) -> list[str]:
        actions = []
        for traj in trajectories:
            script = self._scripts.get(id(traj), [])
            if traj.done or not script:
                traj.truncated = traj.truncated or not traj.terminated
                actions.append("")
                continue
            actions.append(self.policy.demonstrate(traj, script.pop(0)))
        return actions

    def observe(self, trajectory: Trajectory, observation: str) -> None:
        self.policy.observe(trajectory, observation)

    def end(self, trajectory: Trajectory) -> None:
        self._scripts.pop(id(trajectory), None)
        self.policy.end(trajectory)


class SolutionDemonstrations:
    """One demonstration per task, played now in the collector's environments."""

    def __init__(self, collector: Any, policy: Any, solution: Callable[[str], list[str]]):
        self.collector = collector
        self.demonstrator = DemonstrationPolicy(policy, solution)

    def collect(self, task_ids: Sequence[str], group_size: int = 1, seed: int = 0) -> list[Trajectory]:
        played = self.collector.collect(task_ids, 1, seed, policy=self.demonstrator)
        return [t for t in played if t.success and t.num_generated > 0]


class FileDemonstrations:
    """Saved demonstrations; `collect` returns those of the requested tasks."""

    def __init__(self, trajectories: list[Trajectory]):
        self.trajectories = trajectories

    @property
    def task_ids(self) -> list[str]:
        return sorted({t.task_id for t in self.trajectories})

    def collect(self, task_ids: Sequence[str], group_size: int = 1, seed: int = 0) -> list[Trajectory]:
        wanted = set(task_ids)
        return [t for t in self.trajectories if t.task_id in wanted]


_TOKEN_FIELDS = ("input_ids", "loss_mask", "logprobs", "turn_index")


def load_demonstrations(path: str | os.PathLike, *, vocab_size: int, task_ids: Sequence[str]) -> list[Trajectory]:
    """Trajectories from a JSONL file, each checked: buffer fields, token ids the tokenizer knows,
    at least one trained token, and a task of `task_ids` (the training split). Raises
    DemonstrationError naming the file and line."""
    allowed = set(task_ids)
    if not os.path.isfile(path):
        raise DemonstrationError(f"demonstration file not found: {path}")
    out = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                traj = Trajectory.from_json(json.loads(line))
            except (ValueError, TypeError) as err:
                raise DemonstrationError(f"{where}: not a trajectory in the buffer's format ({str(err).splitlines()[0]})") from None
            lengths = {name: len(getattr(traj, name)) for name in _TOKEN_FIELDS}
            if len(set(lengths.values())) != 1:
                raise DemonstrationError(f"{where}: token fields differ in length {lengths}")
            if any(not 0 <= i < vocab_size for i in traj.input_ids):
                raise DemonstrationError(f"{where}: token ids outside the tokenizer's vocabulary (size {vocab_size}): "
                                         "was it made with another model?")
            if not any(traj.loss_mask):
                raise DemonstrationError(f"{where}: no token has loss mask 1, so there is nothing to learn")
            if traj.task_id not in allowed:
                raise DemonstrationError(f"{where}: task {traj.task_id!r} is not in the training split: "
                                         "demonstrations must come from training tasks only")
            out.append(traj)
    if not out:
        raise DemonstrationError(f"{path}: no demonstrations in the file")
    return out
