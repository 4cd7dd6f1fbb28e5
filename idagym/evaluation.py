"""Evaluate a policy on a split: task and scenario goal completion, as AppWorld reports them.

TGC: the share of tasks whose tests all pass. SGC: the share of scenarios all of whose tasks pass
(a scenario is a group of task variants sharing one id prefix, "<scenario>_<n>").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import gymnasium as gym

from idagym.agents.base import Policy
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
    report = summarize(trajectories, scenario_fn)
    report.update(env=env_id, split=split, agent=type(collector.policy).__name__)
    return report


def summarize(trajectories: list, scenario_fn: Callable[[str], str] = default_scenario_id) -> dict[str, Any]:
    """Success rates and counts over finished trajectories (one per task)."""
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
    return {
        "num_tasks": n,
        "num_scenarios": len(scenarios),
        "tgc": sum(t.success for t in trajectories) / n if n else 0.0,
        "sgc": sum(all(v) for v in scenarios.values()) / len(scenarios) if scenarios else 0.0,
        "mean_reward": sum(t.reward for t in trajectories) / n if n else 0.0,
        "mean_turns": sum(len(t.turns) for t in trajectories) / n if n else 0.0,
        "errors": sum(t.error is not None for t in trajectories),
        "truncated": sum(t.truncated for t in trajectories),
        "tasks": per_task,
    }


def format_report(report: dict[str, Any]) -> str:
    """The headline numbers as a markdown table."""
    rows = [
        ("environment", report.get("env", "")),
        ("split", report.get("split", "")),
        ("agent", report.get("agent", "")),
        ("tasks", report["num_tasks"]),
        ("task goal completion (TGC)", f"{100 * report['tgc']:.1f}"),
        ("scenario goal completion (SGC)", f"{100 * report['sgc']:.1f} ({report['num_scenarios']} scenarios)"),
        ("mean reward", f"{report['mean_reward']:.3f}"),
        ("mean turns", f"{report['mean_turns']:.1f}"),
        ("episodes with errors", report["errors"]),
        ("episodes truncated", report["truncated"]),
    ]
    lines = ["| metric | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)
