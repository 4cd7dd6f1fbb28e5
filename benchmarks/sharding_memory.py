"""What one rank holds after a LOOP update, two ranks with whole copies (DDP, the baseline of the same
run) against two ranks sharded by FSDP2 (`train.sharding=fsdp2`): bytes of weights, gradients and
optimiser state (each rank's local tensors), and the rank's peak RSS.

The model is a randomly initialised Qwen2 architecture built from a config, trained in full (no
LoRA, so the optimiser state is the whole model's); the update runs on fixed trajectories whose
rewards alternate within each group, so it takes optimiser steps. Each rank is a process of
`accelerate launch`, on the CPU with gloo.

    .venv/bin/python benchmarks/sharding_memory.py [--hidden-size 576 --layers 30]   # SmolLM2-135M's shape
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from memory_bench import _status_kb  # noqa: E402  (same folder)


def local_bytes(tensors: list[torch.Tensor]) -> int:
    """Bytes a rank holds for these tensors (its shard of a DTensor)."""
    local = [t.to_local() if hasattr(t, "to_local") else t for t in tensors]
    return sum(t.numel() * t.element_size() for t in local)


def rank_job(sharding: str, hidden: int, layers: int) -> None:
    from idagym.agents.models import load_model_and_tokenizer
    from idagym.algorithms.ranks import Ranks, end_rank_process
    from idagym.algorithms.trainer import Trainer
    from idagym.buffer import Trajectory, Turn
    from idagym.config import load_config

    torch.set_num_threads(1)
    cfg = load_config(None, ["model.name=tiny", "model.lora=false", f"model.hidden_size={hidden}", f"model.num_layers={layers}",
                             "train.env=idagym/Lookup-v0", "train.epochs=1", "train.minibatch_size=8",
                             "train.tasks_per_iteration=4", "train.progress=false", f"train.sharding={sharding}"])
    model, _ = load_model_and_tokenizer(cfg.model)
    ranks = Ranks(torch.device("cpu"), sharding)
    trainer = Trainer(cfg, model, collector=None, train_tasks=[f"t{g}" for g in range(4)], ranks=ranks)
    gen = torch.Generator().manual_seed(0)
    trajs = []
    for i in range(8):  # 4 groups of 2, one success and one failure each; 64 tokens, the last 32 generated
        ids = torch.randint(3, 250, (64,), generator=gen).tolist()
        mask = [0] * 32 + [1] * 32
        trajs.append(Trajectory(task_id=f"t{i // 2}", group_id=i // 2, input_ids=ids, loss_mask=mask,
                                logprobs=[-5.0 * m for m in mask], turn_index=[-1] * 32 + [0] * 32, turns=[Turn("o")],
                                reward=float(i % 2), terminated=True))
    metrics = trainer.update([t for t in trajs if t.group_id in ranks.shard(list(range(4)))])
    params = list(model.parameters())
    held = {"weights": local_bytes(params), "grads": local_bytes([p.grad for p in params if p.grad is not None]),
            "optimizer": local_bytes([v for s in trainer.optimizer.state.values() for v in s.values()
                                      if torch.is_tensor(v) and v.dim() > 0]),
            "peak_rss": _status_kb("VmHWM") * 1024}
    rows = ranks.gather([{"rank": ranks.rank, "steps": metrics["steps"], **held}])
    if ranks.is_main:
        print(json.dumps({"sharding": sharding, "ranks": rows}), flush=True)
    ranks.close()
    end_rank_process(0)


def main() -> int:
    from idagym.algorithms.ranks import launch_command

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden-size", type=int, default=576)
    parser.add_argument("--layers", type=int, default=30)
    parser.add_argument("--rank-job", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank_job:
        rank_job(args.rank_job, args.hidden_size, args.layers)
    results = {}
    for sharding in ("none", "fsdp2"):
        cmd = [*launch_command(2), __file__, "--hidden-size", str(args.hidden_size), "--layers", str(args.layers), "--rank-job", sharding]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        row = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("{")))
        results[sharding] = row["ranks"]
        print(json.dumps(row))
    if not all(r["steps"] > 0 for rows in results.values() for r in rows):
        print("no optimiser step was taken", file=sys.stderr)
        return 1
    print(f"\nper rank (the larger of the two), hidden {args.hidden_size}, {args.layers} layers, fp32, full weights:")
    print(f"{'':10} {'DDP MiB':>10} {'FSDP2 MiB':>10} {'FSDP2/DDP':>10}")
    for key in ("weights", "grads", "optimizer", "peak_rss"):
        ddp, fsdp = (max(r[key] for r in results[s]) / 2**20 for s in ("none", "fsdp2"))
        print(f"{key:10} {ddp:10.1f} {fsdp:10.1f} {fsdp / ddp:10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
