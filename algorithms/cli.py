"""`idagym train` and `idagym compare`.

  idagym train [key=value ...]               the main job: warm start, then LOOP, SmolLM2-135M + LoRA, AppWorld
  idagym train CONFIG.yaml [key=value ...]   any algorithm / model / environment
  idagym train --resume RUN_DIR [key=value]  continue a run or main job (after a crash or kill, or to extend it)
  idagym train --num-processes N CONFIG.yaml  N data-parallel ranks (accelerate launch; resume with the same N)
  idagym compare RUN... [--out FILE.png]     success and reward vs iteration, one line per run
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> None:
    """Register the `train` and `compare` verbs."""
    train = subparsers.add_parser("train", help="train an agent with RL (LOOP, GRPO, RLOO, PPO)",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("items", nargs="*", metavar="[CONFIG] [key=value ...]",
                       help="a YAML config (examples/configs/) and/or dot-list overrides such as train.iterations=5")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its latest checkpoint")
    train.add_argument("--num-processes", type=int, default=1, metavar="N",
                       help="data-parallel ranks, started with accelerate launch (default 1: this process)")
    train.set_defaults(func=train_main)
    compare = subparsers.add_parser("compare", help="plot success and reward vs iteration for several runs")
    compare.add_argument("runs", nargs="+", metavar="RUN", help="run folders")
    compare.add_argument("--out", default="compare.png", help="output image (default: compare.png)")
    compare.set_defaults(func=compare_main)


def _split_items(items: list[str]) -> tuple[str | None, list[str]]:
    config = [i for i in items if "=" not in i]
    if len(config) > 1:
        raise ValueError(f"give at most one config file, got {', '.join(config)}")
    return (config[0] if config else None), [i for i in items if "=" in i]


def train_main(args: argparse.Namespace) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle threads must not spin on shared cores
    from idagym.agents.backends import BackendError
    from idagym.algorithms.main_job import JOB_FILE, main_job
    from idagym.algorithms.ranks import world_size
    from idagym.config import ConfigError, load_config
    from idagym.run import Run

    try:
        if args.num_processes < 1:
            raise ConfigError(f"--num-processes must be at least 1, got {args.num_processes}")
        path, overrides = _split_items(args.items)
        if (args.resume and Path(args.resume, JOB_FILE).exists()) or (not args.resume and path is None):
            run_dir = next((o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] in ("run_dir", "train.run_dir")), None)
            rest = [o for o in overrides if o.split("=", 1)[0] not in ("run_dir", "train.run_dir")]
            if args.num_processes > 1:
                raise ConfigError("--num-processes runs a config file's training; the main job runs in one process")
            try:
                return main_job(args.resume or run_dir, rest, resume=bool(args.resume))
            except KeyboardInterrupt:
                return 130  # main_job said how to resume
        if args.resume:
            if path is not None:
                raise ConfigError("--resume takes its config from RUN_DIR/config.yaml: give only key=value overrides")
            run = Run(args.resume)
            if not run.config_path.exists():
                raise ConfigError(f"{args.resume} is not a run folder (no config.yaml)")
            cfg = load_config(run.config_path, overrides)
        else:
            cfg = load_config(path, overrides)
            if world_size() == 1:
                run = Run.create(cfg.train.run_dir, cfg.algorithm.name)
            elif not cfg.train.run_dir:
                raise ConfigError("with several ranks give train.run_dir (idagym train --num-processes N sets it)")
            else:  # launched as one of several ranks: the launcher fixed the folder
                run = Run(cfg.train.run_dir)
                if run.checkpoint_path.exists() or run.metrics_path.exists():
                    raise FileExistsError(f"{run.root} already holds a run: continue it with --resume {run.root}")
        if args.num_processes > 1 and world_size() == 1:
            return launch_ranks(args.num_processes, cfg, run, path, overrides, resume=bool(args.resume))
        result = run_training(cfg, run, resume=bool(args.resume))
    except (ConfigError, ValueError, FileExistsError) as err:
        print(f"idagym train: error: {err}", file=sys.stderr)
        return 2
    except BackendError as err:  # the run folder holds everything up to the last iteration
        print(f"idagym train: error: {err}".replace("--resume RUN", f"--resume {run.root}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        ranks = f"--num-processes {args.num_processes} " if args.num_processes > 1 else ""
        print(f"\ninterrupted: continue with  idagym train {ranks}--resume {run.root}", file=sys.stderr)
        return 130
    if result is None:
        return 0  # not rank 0: rank 0 reports
    before, after = result["before"], result["after"]
    if before or after:
        fmt = lambda e: "n/a" if e is None else (  # noqa: E731
            f"{e['success_rate']:.3f} [95% CI {e['success_ci95'][0]:.3f}-{e['success_ci95'][1]:.3f}] ({e['episodes']} episodes)")
        print(f"success on {cfg.train.eval_split}: before {fmt(before)} -> after {fmt(after)}")
    print(f"done in {result['minutes']:.1f} min. Results in {run.root}/: metrics.jsonl, eval.jsonl, curves.png, "
          f"trajectories.jsonl, tb/ (tensorboard --logdir {run.root}/tb), checkpoint.pt, model/")
    return 0


def launch_ranks(n: int, cfg: Any, run: Any, path: str | None, overrides: list[str], resume: bool) -> int:
    """Start `n` ranks of this training with accelerate launch and wait; a failed rank is one line."""
    import subprocess

    from idagym.algorithms.ranks import check_same_world, launch_command
    from idagym.config import check_world_size

    check_world_size(cfg, n)
    state = run.load_checkpoint() if resume else None
    if state is not None:  # refused before any rank starts
        check_same_world(state, n)
    if not resume:
        overrides = [o for o in overrides if o.split("=", 1)[0] not in ("run_dir", "train.run_dir")]
        overrides.append(f"train.run_dir={run.root}")
    items = ([path] if path and not resume else []) + overrides + (["--resume", str(run.root)] if resume else [])
    command = [*launch_command(n), "-m", "idagym.cli", "train", *items]
    code = subprocess.run(command).returncode
    if code != 0:
        print(f"idagym train: error: a rank failed (exit code {code}); what was written is kept: continue with  "
              f"idagym train --num-processes {n} --resume {run.root}", file=sys.stderr)
        return 1
    return 0


def run_training(cfg: Any, run: Any, resume: bool) -> dict[str, Any] | None:
    """Train `cfg` in `run` (from its checkpoint with `resume`) and save the model; the before/after
    evaluations and the minutes taken (None on ranks other than 0, which write nothing).
    Everything written stays: a run interrupted here resumes."""
    import torch

    from idagym.algorithms.ranks import Ranks
    from idagym.algorithms.trainer import build
    from idagym.config import to_yaml
    from idagym.devices import resolve_device

    ranks = Ranks(resolve_device(cfg.train.device), cfg.train.sharding)
    main = ranks.is_main
    torch.set_num_threads(cfg.train.threads)
    t0 = time.time()
    if main:
        run.write_config(to_yaml(cfg))
        print(f"run folder: {run.root}  (algorithm {cfg.algorithm.name}, model {cfg.model.name}, env {cfg.train.env}"
              + (f", {ranks.world} ranks" if ranks.world > 1 else "") + ")", flush=True)
    trainer, collector = build(cfg, run, ranks=ranks)
    try:
        state = run.load_checkpoint() if resume else None
        if state is not None:
            trainer.load_state_dict(state)
            if main:
                print(f"resumed at iteration {trainer.iteration} of {cfg.train.iterations}", flush=True)
        if main:
            run.rewind(trainer.iteration)  # drop records of iterations the checkpoint does not hold
            run.tensorboard(purge_step=trainer.iteration)
        result = trainer.train()
        trainer.save_model(run.root / "model")  # every rank: sharded weights are gathered; rank 0 writes
    finally:
        collector.close()
        collector.policy.close()  # a vLLM server started for the run stops with it
        if main:
            run.close()
    ranks.close()  # every rank is done: leave the process group before the process exits
    return {**result, "minutes": (time.time() - t0) / 60} if main else None


def compare_main(args: argparse.Namespace) -> int:
    from idagym.run import Run

    runs = []
    for folder in args.runs:
        run = Run.__new__(Run)
        run.root = Path(folder)
        if not run.metrics_path.exists():
            print(f"idagym compare: error: {folder} has no metrics.jsonl", file=sys.stderr)
            return 2
        rows = run.metrics()
        name = rows[0].get("algorithm", run.root.name) if rows else run.root.name
        runs.append((name, run.root.name, rows))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    names = [n for n, _, _ in runs]
    for name, folder, rows in runs:
        label = name if names.count(name) == 1 else f"{name} ({folder})"
        its = [r["iteration"] for r in rows]
        axes[0].plot(its, [r["success_rate"] for r in rows], label=label)
        axes[1].plot(its, [r["reward_mean"] for r in rows], label=label)
    for ax, title in zip(axes, ["success rate", "mean reward"], strict=True):
        ax.set_title(title)
        ax.set_xlabel("iteration")
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")
    return 0
