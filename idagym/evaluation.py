"""Evaluate a policy on a split: task and scenario goal completion, as AppWorld reports them.

TGC: the share of tasks whose tests all pass. SGC: the share of scenarios all of whose tasks pass
(a scenario is a group of task variants sharing one id prefix, "<scenario>_<n>").
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from idagym.agents.base import Policy
from idagym.behaviour import behaviour
from idagym.collector import Collector


def default_scenario_id(task_id: str) -> str:
    """The scenario of an AppWorld task ('<scenario>_<n>', `idagym.appworld.tasks.scenario_id`); other ids
    (e.g. Lookup's) are their own scenario, or the part before the last '_'."""
    from idagym.appworld.tasks import scenario_id

    try:
        return scenario_id(task_id)
    except ValueError:
        return task_id.rsplit("_", 1)[0]


def evaluate(
    env: str | Collector,
    policy: Policy | Callable[[gym.Env], Policy],
    split: str = "dev",
    *,
    limit: int | None = None,
    num_envs: int = 1,
    env_kwargs: dict[str, Any] | None = None,
    scenario_fn: Callable[[str], str] = default_scenario_id,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Run one episode per task of `split` and report success rates and counts.

    `env` is a registered id (a Collector is made and closed here) or a ready Collector.
    `policy` is a Policy or a factory given the first env (e.g. to read its solutions or APIs).
    """
    collector = env if isinstance(env, Collector) else Collector(env, None, num_envs, env_kwargs, progress=progress)
    try:
        base = collector.envs[0]
        collector.policy = policy if isinstance(policy, Policy) else policy(base)
        task_ids = collector.task_ids(split)[:limit]
        trajectories = collector.collect(task_ids, group_size=1, seed=seed)
    finally:
        if collector is not env:
            collector.close()
    env_id = env if isinstance(env, str) else (base.spec.id if base.spec else type(base.unwrapped).__name__)
    report = summarize(trajectories, scenario_fn, base.unwrapped.task_difficulty)
    report.update(env=env_id, split=split, agent=type(collector.policy).__name__)
    return report


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% (Wilson score) interval of a success rate: sound at 0 and 1 and for small n."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    return (0.0 if successes == 0 else lo), (1.0 if successes == n else hi)  # exact ends, no float dust


def summarize(trajectories: list, scenario_fn: Callable[[str], str] = default_scenario_id,
              difficulty_fn: Callable[[str], int | None] | None = None) -> dict[str, Any]:
    """Success rates and counts over finished trajectories (one per task); with `difficulty_fn`,
    TGC and SGC per difficulty level too (a scenario's level is its tasks'), as AppWorld reports."""
    n = len(trajectories)
    scenarios: dict[str, list[bool]] = defaultdict(list)
    for traj in trajectories:
        scenarios[scenario_fn(traj.task_id)].append(traj.success)
    per_task = [
        {
            "task_id": t.task_id,
            "success": t.success,
            "reward": t.reward,
            "turns": len(t.turns),
            "terminated": t.terminated,
            "truncated": t.truncated,
            "error": t.error,
        }
        for t in trajectories
    ]
    solved, solved_scenarios = sum(t.success for t in trajectories), sum(all(v) for v in scenarios.values())
    return {
        "num_tasks": n,
        "num_scenarios": len(scenarios),
        "tgc": solved / n if n else 0.0,
        "tgc_interval": wilson_interval(solved, n),
        "sgc": solved_scenarios / len(scenarios) if scenarios else 0.0,
        "sgc_interval": wilson_interval(solved_scenarios, len(scenarios)),
        "mean_reward": sum(t.reward for t in trajectories) / n if n else 0.0,
        "mean_turns": sum(len(t.turns) for t in trajectories) / n if n else 0.0,
        "errors": sum(t.error is not None for t in trajectories),
        "truncated": sum(t.truncated for t in trajectories),
        "by_difficulty": _by_difficulty(trajectories, scenario_fn, difficulty_fn) if difficulty_fn else {},
        "behaviour": behaviour(trajectories),
        "tasks": per_task,
    }


def _by_difficulty(trajectories: list, scenario_fn: Callable[[str], str],
                   difficulty_fn: Callable[[str], int | None]) -> dict[str, dict[str, Any]]:
    levels: dict[int, list] = defaultdict(list)
    for traj in trajectories:
        level = difficulty_fn(traj.task_id)
        if level is not None:
            levels[level].append(traj)
    out = {}
    for level, trajs in sorted(levels.items()):
        scenarios: dict[str, list[bool]] = defaultdict(list)
        for traj in trajs:
            scenarios[scenario_fn(traj.task_id)].append(traj.success)
        solved, solved_scenarios = sum(t.success for t in trajs), sum(all(v) for v in scenarios.values())
        out[str(level)] = {"tasks": len(trajs), "tgc": solved / len(trajs), "tgc_interval": wilson_interval(solved, len(trajs)),
                           "scenarios": len(scenarios), "sgc": solved_scenarios / len(scenarios),
                           "sgc_interval": wilson_interval(solved_scenarios, len(scenarios))}
    return out


def _percent(interval: tuple[float, float]) -> str:
    return f"[95% CI {100 * interval[0]:.1f}-{100 * interval[1]:.1f}]"


def format_report(report: dict[str, Any]) -> str:
    """The headline numbers as a markdown table."""
    rows = [
        ("environment", report.get("env", "")),
        ("split", report.get("split", "")),
        ("agent", report.get("agent", "")),
        ("tasks", report["num_tasks"]),
        ("task goal completion (TGC)", f"{100 * report['tgc']:.1f} {_percent(report['tgc_interval'])}"),
        ("scenario goal completion (SGC)",
         f"{100 * report['sgc']:.1f} {_percent(report['sgc_interval'])} ({report['num_scenarios']} scenarios)"),
        ("mean reward", f"{report['mean_reward']:.3f}"),
        ("mean turns", f"{report['mean_turns']:.1f}"),
        ("episodes with errors", report["errors"]),
        ("episodes truncated", report["truncated"]),
    ]
    rows += [(f"difficulty {level} ({d['tasks']} tasks): TGC / SGC",
              f"{100 * d['tgc']:.1f} {_percent(d['tgc_interval'])} / {100 * d['sgc']:.1f} {_percent(d['sgc_interval'])}")
             for level, d in report.get("by_difficulty", {}).items()]
    rows += [(f"behaviour: {k.replace('_', ' ')}", f"{v:.3f}") for k, v in report.get("behaviour", {}).items()
             if v is not None]
    lines = ["| metric | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


def model_fingerprint(state: Mapping[str, torch.Tensor]) -> str:
    """A hash of a model's state dict (every weight and buffer): equal for equal models, whether
    trained here or loaded."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in state.items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@functools.cache
def code_fingerprint() -> str:
    """A hash of idagym's own source (environments, prompts, sampling): an evaluation cached before
    a code change is never reused after it."""
    import idagym
    import idagym.agents
    import idagym.algorithms

    digest = hashlib.blake2b(digest_size=16)
    for package in (idagym, idagym.agents, idagym.algorithms):
        folder = Path(package.__file__).parent
        for path in sorted(folder.rglob("*.py")):
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


class EvalCache:
    """Evaluations kept by what decides them (the model's weights, the policy and env settings, the
    task data, the tasks, the seed and idagym's code), so an evaluation that would give the same
    figure is not run twice, e.g. the untrained model's. In $IDAGYM_CACHE/evals or
    ~/.cache/idagym/evals."""

    def __init__(self, folder: str | os.PathLike | None = None):
        root = os.environ.get("IDAGYM_CACHE")
        self.folder = Path(folder) if folder else (Path(root) if root else Path.home() / ".cache" / "idagym") / "evals"

    @staticmethod
    def key(**parts: Any) -> str:
        parts = {**parts, "code": code_fingerprint()}
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]

    def get(self, key: str) -> dict[str, Any] | None:
        path = self.folder / f"{key}.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None  # missing, or torn by a crash: evaluate again

    def put(self, key: str, row: dict[str, Any]) -> None:
        from idagym.run import atomic_write_bytes

        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.folder / f"{key}.json", lambda f: f.write(json.dumps(row).encode()))
