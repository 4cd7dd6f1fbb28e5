"""The main job, `idagym train` with no config: a warm start, then LOOP, on the built-in AppWorld tasks.

SmolLM2-135M writes prose, not AppWorld code, so RL from it has no reward to climb from (every
advantage is 0). The job therefore runs two stages through the same trainer and run folders:

1. `warm_start`: supervised training (`sft`) on the train split's ground-truth solutions, played
   through the policy so that the tokens, chat template and loss mask are those of rollouts;
2. `loop`: LOOP from the warm-started model (its LoRA adapter, continued).

Dev TGC and SGC are measured before training, after the warm start and after LOOP with one set
of evaluation settings (`EVAL`; one turn, its token budget from the longest train solution), 42 dev tasks
once each, the same episodes' seeds each time. An evaluation of the same weights and settings is
cached (the untrained model's figure is measured once per machine). `--resume RUN` continues an
interrupted job at the stage and iteration it reached.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from idagym.config import Config, load_config

# Shared by both stages and by every evaluation: the model, how it samples, the env, the evaluation.
SHARED = [
    # bfloat16: about 2.5x float32's speed on CPUs with AMX / AVX512-BF16 (benchmarks/device_iteration.py), and on GPUs
    "model.name=smollm2-135m", "model.dtype=bfloat16", "model.lora=true", "model.lora_r=16", "model.lora_alpha=32",
    "policy.temperature=0.5", "policy.max_context_tokens=4096",
    # one turn: every train solution is one action, so one turn is the budget that fits them all
    "collector.num_envs=14", "collector.env_kwargs.max_turns=1",
    "train.env=idagym/AppWorld-v0", "train.split=train",
]
# 42 dev tasks (the first 14 of its 23 scenarios, 3 tasks each), one episode each: what fits 2 cores
EVAL = ["train.eval_split=dev", "train.eval_tasks=42", "train.eval_episodes_per_task=1", "train.eval_cache=true"]
STAGES: dict[str, list[str]] = {
    # two shuffled passes over the 204 train tasks' solutions
    "warm_start": ["algorithm.name=sft", "train.lr=1e-3", "train.task_order=epochs", "train.iterations=102",
                   "train.tasks_per_iteration=4",
                   "collector.group_size=1", "train.minibatch_size=4", "train.epochs=1"],
    "loop": ["algorithm.name=loop", "train.lr=1e-4", "train.iterations=4", "train.tasks_per_iteration=3",
             "collector.group_size=4", "train.minibatch_size=4"],
}
JOB_FILE = "main_job.json"


def solution_token_budget(root: str, tokenizer: Any) -> int:
    """Tokens the longest train solution takes as a response (its code block and end of turn), plus
    an eighth, rounded up to 32: the turn budget of training and evaluation alike."""
    from idagym.appworld.tasks import ground_truth_code, load_split

    longest = max(len(tokenizer(f"```python\n{ground_truth_code(t, root=Path(root)).strip()}\n```")["input_ids"])
                  for t in load_split("train", root=Path(root)))
    return 32 * math.ceil(longest * 9 / 8 / 32)


def stage_config(name: str, folder: Path, budget: int, overrides: list[str]) -> Config:
    model = [f"model.name={folder / 'warm_start' / 'model'}"] if name == "loop" else []
    return load_config(None, SHARED + EVAL + [f"policy.max_new_tokens={budget}"] + STAGES[name] + model
                       + list(overrides) + [f"train.run_dir={folder / name}"])


def main_job(run_dir: str | None, overrides: list[str], resume: bool) -> int:
    """Run (or with `resume`, continue) both stages; print the three dev figures."""
    from idagym.agents.models import _load_tokenizer, smollm2_folder
    from idagym.algorithms.cli import run_training
    from idagym.appworld.tasks import suite_root
    from idagym.run import Run

    folder = Path(run_dir) if run_dir else Path("runs") / f"main-{time.strftime('%Y%m%d-%H%M%S')}"
    for name in STAGES:  # a bad override fails here, before anything is written
        stage_config(name, folder, 32, overrides)
    job = folder / JOB_FILE
    if resume and not job.exists():
        raise ValueError(f"{folder} is not a main-job folder (no {JOB_FILE})")
    if not resume and job.exists():
        raise FileExistsError(f"{folder} already holds a main job: continue it with --resume {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    if resume:
        settings = json.loads(job.read_text())
        overrides = settings["overrides"] + list(overrides)
    else:
        tokenizer = _load_tokenizer(smollm2_folder())
        settings = {"overrides": list(overrides), "max_new_tokens": solution_token_budget(str(suite_root()), tokenizer)}
        job.write_text(json.dumps(settings, indent=2))
    budget = int(settings["max_new_tokens"])
    print(f"main job in {folder}: warm start (sft) then LOOP; evaluation on 42 dev tasks, "
          f"temperature 0.5, one turn of up to {budget} new tokens (fits every train solution)", flush=True)
    figures: dict[str, dict] = {}
    for name in STAGES:
        cfg = stage_config(name, folder, budget, overrides)
        run = Run(folder / name)
        evals = {e["phase"]: e for e in run.evals()}
        if "after" in evals and (run.root / "model").is_dir():
            print(f"{name}: done before, not rerun", flush=True)
        else:
            print(f"\n== stage {name}: {cfg.algorithm.name}, {cfg.train.iterations} iterations ==", flush=True)
            started = run.checkpoint_path.exists() or run.metrics_path.exists()
            try:
                run_training(cfg, run, resume=started)
            except KeyboardInterrupt:
                print(f"\ninterrupted: continue with  idagym train --resume {folder}", file=sys.stderr)
                raise
            evals = {e["phase"]: e for e in run.evals()}
        if name == "warm_start":
            figures["untrained"] = evals["before"]
        figures[name] = evals["after"]
    plot = plot_job(folder, figures)
    print("\n" + format_figures(figures))
    print(f"\ncurves: {plot}   run folder: {folder}/ (warm_start/, loop/: metrics, evals, trajectories, models)")
    return 0


def format_figures(figures: dict[str, dict]) -> str:
    lines = ["| dev (42 tasks, once each) | TGC [95% CI] | SGC [95% CI] | episodes |", "|---|---|---|---|"]
    for label, e in figures.items():
        tgc, sgc = e["tgc"], e["sgc"]
        lines.append(f"| {label.replace('_', ' ')} | {100 * tgc:.1f} [{100 * e['tgc_ci95'][0]:.1f}-{100 * e['tgc_ci95'][1]:.1f}]"
                     f" | {100 * sgc:.1f} [{100 * e['sgc_ci95'][0]:.1f}-{100 * e['sgc_ci95'][1]:.1f}]"
                     f" ({e['scenarios']} scenarios) | {e['episodes']} |")
    return "\n".join(lines)


def plot_job(folder: Path, figures: dict[str, dict]) -> Path:
    """curves.png: dev TGC and SGC at the three points, and the LOOP stage's train reward."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from idagym.run import read_jsonl

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    labels = [k.replace("_", " ") for k in figures]
    for offset, key in ((-0.1, "tgc"), (0.1, "sgc")):
        values = [100 * e[key] for e in figures.values()]
        lows = [v - 100 * e[f"{key}_ci95"][0] for v, e in zip(values, figures.values(), strict=True)]
        highs = [100 * e[f"{key}_ci95"][1] - v for v, e in zip(values, figures.values(), strict=True)]
        axes[0].errorbar([i + offset for i in range(len(values))], values, yerr=[lows, highs], fmt="o", capsize=4,
                         label=key.upper())
    axes[0].set_xticks(range(len(labels)), labels)
    axes[0].set_ylabel("% of dev (95% CI)")
    axes[0].set_title("dev task / scenario goal completion")
    axes[0].legend()
    rows = read_jsonl(folder / "loop" / "metrics.jsonl")
    for key in ("reward_mean", "success_rate"):
        axes[1].plot([r["iteration"] for r in rows], [r[key] for r in rows], marker=".", label=key.replace("_", " "))
    axes[1].set_title("LOOP: train rollouts")
    axes[1].set_xlabel("iteration")
    axes[1].legend()
    fig.tight_layout()
    out = folder / "curves.png"
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
