"""How an agent behaves, counted from its trajectories (the paper's behaviour analysis, as numbers).

For code actions that call app APIs as `apis.<app>.<api>(...)` (AppWorld's form). An action's
output is the next turn's observation; the last action's output is `info["last_output"]`. The
`api_docs` and `supervisor` apps are tools, not apps the task is about, and are not counted as app
API calls. Each figure is over a list of trajectories; a share with nothing to count is None.
"""

from __future__ import annotations

import re
from typing import Any

from idagym.buffer import Trajectory

_CALL = re.compile(r"apis\.(\w+)\.(\w+)\s*\(")
_DOC = re.compile(r"show_api_doc\(\s*(?:app_name\s*=\s*)?['\"](\w+)['\"]\s*,\s*(?:api_name\s*=\s*)?['\"](\w+)['\"]")
_TOOLS = ("api_docs", "supervisor")
FAILED_API_CALL = "Response status code is"  # AppWorld's message when an API call is refused
EXCEPTION = "Traceback"


def outputs(traj: Trajectory) -> list[str]:
    """What each action printed, in order (empty where unknown)."""
    later = [t.observation for t in traj.turns[1:]]
    return later + [str(traj.info.get("last_output", ""))] if traj.turns else []


def app_calls(action: str) -> list[tuple[int, str, str]]:
    """(position, app, api) of each app API call in `action`, tools excluded."""
    return [(m.start(), m.group(1), m.group(2)) for m in _CALL.finditer(action) if m.group(1) not in _TOOLS]


def read_docs_first(traj: Trajectory) -> bool | None:
    """Whether every app API the episode calls had its doc shown (`show_api_doc(app, api)`) earlier in
    the episode, in an earlier action or before the call in the same one. None: no app API called."""
    documented: set[tuple[str, str]] = set()
    called_any = False
    for turn in traj.turns:
        events = [(m.start(), "doc", m.group(1), m.group(2)) for m in _DOC.finditer(turn.action)]
        events += [(pos, "call", app, api) for pos, app, api in app_calls(turn.action)]
        for _, kind, app, api in sorted(events):
            if kind == "doc":
                documented.add((app, api))
            else:
                called_any = True
                if (app, api) not in documented:
                    return False
    return True if called_any else None


def failed_api_calls(traj: Trajectory) -> int:
    """API calls the apps refused (AppWorld prints "Response status code is ..."), summed over outputs."""
    return sum(out.count(FAILED_API_CALL) for out in outputs(traj))


def went_on_after_exception(traj: Trajectory) -> bool:
    """Whether an action other than the last one raised (its output shows a traceback): the episode
    went on after a setback."""
    return any(EXCEPTION in out for out in outputs(traj)[:-1])


def completed_early(traj: Trajectory) -> bool:
    """Whether the episode called `complete_task` before any app API: it ended the task without
    touching the apps the task is about (a guess or a give-up)."""
    for turn in traj.turns:
        done = turn.action.find("complete_task(")
        calls = [pos for pos, _, _ in app_calls(turn.action)]
        if done >= 0:
            return not calls or min(calls) > done
        if calls:
            return False
    return False


def repeated_actions(traj: Trajectory) -> int:
    """Actions identical to the one just before them (the agent stuck in a loop)."""
    actions = [t.action.strip() for t in traj.turns]
    return sum(a == b and a != "" for a, b in zip(actions, actions[1:], strict=False))


def _share(values: list[bool | None]) -> float | None:
    counted = [v for v in values if v is not None]
    return sum(counted) / len(counted) if counted else None


def behaviour(trajectories: list[Trajectory]) -> dict[str, Any]:
    """The behaviour figures of a set of episodes (see each function for how it counts)."""
    n = len(trajectories)
    setbacks = [t for t in trajectories if went_on_after_exception(t)]
    return {
        "read_docs_first": _share([read_docs_first(t) for t in trajectories]),
        "failed_api_calls_per_episode": sum(map(failed_api_calls, trajectories)) / n if n else None,
        "went_on_after_exception": _share([went_on_after_exception(t) for t in trajectories]),
        "success_after_exception": _share([t.success for t in setbacks]),
        "completed_early": _share([completed_early(t) for t in trajectories]),
        "repeated_actions_per_episode": sum(map(repeated_actions, trajectories)) / n if n else None,
    }
