"""Which algorithm learns AppWorld from the warm start: more supervised training vs LOOP vs GRPO vs
RLOO vs PPO with a critic, at an equal sample budget, over seeds; dev and challenge TGC / SGC.

All arms start from one warm start (the main job's `warm_start` stage, trained here once unless
`--warm-start MODEL` names one), use the main job's sampling and evaluation settings, and train on
the same number of trajectories: an RL arm `iterations x tasks x K` rollouts, the supervised arm as
many demonstrations. After training, dev is scored by the trainer's own evaluation and challenge by
`idagym eval` on the saved model (evaluated as trained). The table gives, per arm, the mean over
seeds and a 95% t-interval across seeds; it and a plot land in the output folder. Every arm and
seed is its own run folder, so a killed benchmark continues where it stopped when started again;
the table is rewritten after every arm and seed, and `--report` writes it from the folders alone.
Not in CI: on 2 cores each arm and seed takes 8-13 minutes for sft (three 42-task evaluations: dev
before and after, challenge after; the policy seed is part of the evaluation settings, so "before"
is measured per seed), more for the RL arms: about 3 hours in all, plus, without `--warm-start`,
the 25-minute warm start.

    python benchmarks/appworld_learning.py [--out runs/appworld-learning] [--seeds 3] [--iterations 2]
    python benchmarks/appworld_learning.py --report        # the table of what has finished
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import subprocess
import sys
from pathlib import Path

from idagym.algorithms.main_job import EVAL, SHARED, STAGES, solution_token_budget
from idagym.config import load_config
from idagym.run import Run

ARMS = ("sft", "loop", "grpo", "rloo", "ppo")
T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57}  # two-sided t quantiles by degrees of freedom


def arm_overrides(arm: str, warm_start: Path, seed: int, iterations: int, tasks: int, group: int) -> list[str]:
    common = [f"model.name={warm_start}", f"train.seed={seed}", f"policy.seed={seed}", "train.minibatch_size=4"]
    if arm == "sft":  # as many demonstrations as the RL arms get rollouts
        return common + ["algorithm.name=sft", "train.lr=1e-3", "collector.group_size=1", "train.epochs=1",
                         f"train.iterations={iterations * group}", f"train.tasks_per_iteration={tasks}"]
    return common + [f"algorithm.name={arm}", "train.lr=1e-4", f"train.iterations={iterations}",
                     f"train.tasks_per_iteration={tasks}", f"collector.group_size={group}"]


def train_arm(folder: Path, overrides: list[str]) -> None:
    """Train one arm in `folder` (resuming it if it was started), evaluated on dev before and after,
    in a process of its own: the memory a training leaves behind goes with it."""
    if finished(folder, "after") and (folder / "model").is_dir():
        return
    child = multiprocessing.get_context("spawn").Process(target=_train, args=(folder, overrides))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"training {folder} failed (exit code {child.exitcode}): run the benchmark again to continue")


def _train(folder: Path, overrides: list[str]) -> None:
    from idagym.algorithms.cli import run_training

    cfg = load_config(None, overrides + [f"train.run_dir={folder}"])
    run = Run(folder)
    run_training(cfg, run, resume=run.checkpoint_path.exists() or run.metrics_path.exists())


def finished(folder: Path, phase: str) -> dict | None:
    """The dev evaluation of `phase` ('before' or 'after') that `folder`'s run logged, if any."""
    done = {e["phase"]: e for e in Run(folder).evals()} if (folder / "eval.jsonl").exists() else {}
    return done.get(phase)


def challenge(folder: Path, limit: int, num_envs: int) -> None:
    out = folder / "challenge.json"
    if not out.exists():
        cmd = [sys.executable, "-m", "idagym.cli", "eval", "--agent", str(folder / "model"), "--split", "challenge",
               "--limit", str(limit), "--num-envs", str(num_envs), "--out", str(out), "--no-progress"]
        subprocess.run(cmd, check=True)


def collect_results(out: Path, arms: list[str], seeds: int) -> dict[str, list[dict]]:
    """Per arm, one row per seed whose training and both evaluations are done (read from its folder)."""
    results: dict[str, list[dict]] = {}
    for arm in arms:
        for seed in range(seeds):
            folder = out / f"{arm}-seed{seed}"
            before, after = finished(folder, "before"), finished(folder, "after")
            if before is None or after is None or not (folder / "challenge.json").exists():
                continue
            chal = json.loads((folder / "challenge.json").read_text())
            steps = sum(int(r.get("steps", 0)) for r in Run(folder).metrics())  # 0: every group was a tie
            results.setdefault(arm, []).append({"seed": seed, "steps": steps, "dev_tgc_before": before["tgc"], "dev_tgc": after["tgc"],
                                                "dev_sgc": after["sgc"], "challenge_tgc": chal["tgc"],
                                                "challenge_sgc": chal["sgc"]})
    return results


def mean_ci(values: list[float]) -> str:
    mean = statistics.mean(values)
    if len(values) < 2:
        return f"{100 * mean:.1f}"
    half = T95.get(len(values) - 1, 1.96) * statistics.stdev(values) / len(values) ** 0.5
    return f"{100 * mean:.1f} [{100 * max(0.0, mean - half):.1f}-{100 * min(1.0, mean + half):.1f}]"


def write_report(out: Path, results: dict[str, list[dict]]) -> str:
    """table.md, results.json and learning.png from the finished arms and seeds; returns the table."""
    keys = ("dev_tgc_before", "dev_tgc", "dev_sgc", "challenge_tgc", "challenge_sgc")
    lines = ["| arm | seeds | optimiser steps per seed | dev TGC before | dev TGC after | dev SGC after | challenge TGC "
             "| challenge SGC |", "|---|---|---|---|---|---|---|---|"]
    for arm, rows in results.items():
        cells = [mean_ci([r[k] for r in rows]) for k in keys]
        steps = ", ".join(str(r["steps"]) for r in rows)
        lines.append(f"| {arm} | {len(rows)} | {steps} | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n\nPercent; mean over seeds [95% t-interval across seeds]; 42 dev and 42 challenge tasks.\n"
    (out / "table.md").write_text(table)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    if results:
        plot(out, results)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/appworld-learning")
    parser.add_argument("--warm-start", default=None, help="a warm-started model folder (default: train one here)")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=2, help="RL iterations per arm")
    parser.add_argument("--tasks", type=int, default=3, help="tasks per iteration")
    parser.add_argument("--group", type=int, default=4, help="K rollouts per task")
    parser.add_argument("--challenge-tasks", type=int, default=42)
    parser.add_argument("--report", action="store_true", help="only write the table of the arms and seeds done so far")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    arms = args.arms.split(",")
    if args.report:
        print(write_report(out, collect_results(out, arms, args.seeds)))
        return
    from idagym.agents.models import _load_tokenizer, smollm2_folder
    from idagym.appworld.tasks import suite_root

    budget = [f"policy.max_new_tokens={solution_token_budget(str(suite_root()), _load_tokenizer(smollm2_folder()))}"]
    base = SHARED + EVAL + budget
    warm = Path(args.warm_start) if args.warm_start else out / "warm_start" / "model"
    if not args.warm_start:
        train_arm(out / "warm_start", base + STAGES["warm_start"])
    num_envs = int(load_config(None, base).collector.num_envs)
    for arm in arms:
        for seed in range(args.seeds):
            folder = out / f"{arm}-seed{seed}"
            print(f"== {arm}, seed {seed}: {folder}", flush=True)
            train_arm(folder, base + arm_overrides(arm, warm, seed, args.iterations, args.tasks, args.group))
            challenge(folder, args.challenge_tasks, num_envs)
            write_report(out, collect_results(out, arms, args.seeds))  # a killed run keeps its table so far
    print(write_report(out, collect_results(out, arms, args.seeds)))
    print(f"\n{out}/table.md, results.json, learning.png")


def plot(out: Path, results: dict[str, list[dict]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, split in zip(axes, ("dev", "challenge"), strict=True):
        for i, rows in enumerate(results.values()):
            values = [100 * r[f"{split}_tgc"] for r in rows]
            ax.scatter([i] * len(values), values, alpha=0.6)
            ax.errorbar([i], [statistics.mean(values)], fmt="_", markersize=20, color="black")
        ax.set_xticks(range(len(results)), list(results))
        ax.set_title(f"{split} TGC per seed (bar: mean)")
        ax.set_ylabel("%")
    fig.tight_layout()
    fig.savefig(out / "learning.png", dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
