"""Policies without a model: replay ground-truth actions, or do nothing and submit.

They check environments and the evaluation path end to end: the scripted agent should score 1.0
on every task, the null agent 0. They record turns (text) but no tokens.
"""

from __future__ import annotations

from collections.abc import Callable

from idagym.agents.base import Policy
from idagym.buffer import Trajectory, Turn

COMPLETE_TASK = "apis.supervisor.complete_task()"


class ScriptedPolicy(Policy):
    """Replays `solution(task_id)` one action a turn (e.g. `env.unwrapped.solution`).

    The solution is fetched at `start`, right after the env's reset, so worlds whose solution
    depends on the episode (Lookup's hidden name) work when `solution` belongs to that env.
    An episode that outlives its script ends truncated.
    """

    def __init__(self, solution: Callable[[str], list[str]]):
        self.solution = solution
        self._scripts: dict[int, list[str]] = {}

    def start(self, task_id: str, group_id: int, observation: str) -> Trajectory:
        traj = Trajectory(task_id=task_id, group_id=group_id)
        traj.turns.append(Turn(observation=observation))
        self._scripts[id(traj)] = list(self.solution(task_id))
        return traj

    def act(self, trajectories: list[Trajectory]) -> list[str]:
        actions = []
        for traj in trajectories:
            script = self._scripts.get(id(traj), [])
            if not script:
                traj.truncated = True
                actions.append("")
                continue
            action = script.pop(0)
            turn = traj.turns[-1]
            turn.response = turn.action = action
            actions.append(action)
        return actions

    def observe(self, trajectory: Trajectory, observation: str) -> None:
        trajectory.turns.append(Turn(observation=observation))

    def end(self, trajectory: Trajectory) -> None:
        self._scripts.pop(id(trajectory), None)
        if trajectory.turns and not trajectory.turns[-1].action:
            trajectory.turns.pop()  # the observation that got no answer is not a turn


class NullPolicy(ScriptedPolicy):
    """Submits at once without doing anything (AppWorld: `apis.supervisor.complete_task()`)."""

    def __init__(self, action: str = COMPLETE_TASK):
        super().__init__(lambda task_id: [action])
