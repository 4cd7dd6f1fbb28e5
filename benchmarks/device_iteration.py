"""One LOOP iteration (collect, then update) on a device, in bf16 and in fp32 as the baseline of the
same run: generation and training tokens/s, their bf16/fp32 ratios, and peak device memory.

The model is a randomly initialised Qwen2 architecture built from a config (nothing downloaded);
the world is Lookup, whose rewards a random model rarely earns, so rewards are set to alternate
within each group after collection: every minibatch then takes an optimiser step.

    .venv/bin/python benchmarks/device_iteration.py --device cuda --hidden-size 1536 --layers 28   # ~0.6B
    .venv/bin/python benchmarks/device_iteration.py --device cpu --hidden-size 64 --layers 2        # tiny
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from idagym.algorithms.trainer import build  # noqa: E402
from idagym.config import load_config  # noqa: E402

CONFIG = Path(__file__).resolve().parent.parent / "examples" / "configs" / "lookup_loop.yaml"


def one_iteration(device: str, dtype: str, hidden: int, layers: int, new_tokens: int) -> dict[str, float]:
    cfg = load_config(CONFIG, [f"train.device={device}", f"model.dtype={dtype}", f"model.hidden_size={hidden}",
                               f"model.num_layers={layers}", f"policy.max_new_tokens={new_tokens}",
                               "model.gradient_checkpointing=true", "collector.num_envs=16",
                               "train.tasks_per_iteration=4", "train.minibatch_size=8", "train.progress=false"])
    trainer, collector = build(cfg, log=lambda line: None)
    on_cuda = trainer.device.type == "cuda"
    try:
        if on_cuda:
            torch.cuda.reset_peak_memory_stats()
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        trajs = collector.collect(trainer.train_tasks[:4], 8, seed=0)
        if on_cuda:
            torch.cuda.synchronize()
        t_collect = time.perf_counter() - t0
        for i, traj in enumerate(trajs):
            traj.reward = float(i % 2)
        t1 = time.perf_counter()
        metrics = trainer.update(trajs)
        if on_cuda:
            torch.cuda.synchronize()
        t_update = time.perf_counter() - t1
    finally:
        collector.close()
    generated = sum(t.num_generated for t in trajs)
    trained = sum(len(t.input_ids) for t in trajs) * trainer.epochs  # every token passes the network
    params = sum(p.numel() for p in trainer.model.parameters())
    return {"dtype": dtype, "params_millions": round(params / 1e6, 1), "steps": metrics["steps"],
            "generation_tokens_per_s": round(generated / t_collect, 1),
            "training_tokens_per_s": round(trained / t_update, 1),
            "peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if on_cuda else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--hidden-size", type=int, default=1536)
    parser.add_argument("--layers", type=int, default=28)
    parser.add_argument("--new-tokens", type=int, default=32, help="tokens generated per turn")
    args = parser.parse_args()
    rows = [one_iteration(args.device, dtype, args.hidden_size, args.layers, args.new_tokens)
            for dtype in ("bfloat16", "float32")]
    for row in rows:
        print(json.dumps(row))
    bf16, fp32 = rows
    if bf16["steps"] == 0:
        print("no optimiser step was taken", file=sys.stderr)
        return 1
    print(f"bf16 / fp32: generation x{bf16['generation_tokens_per_s'] / fp32['generation_tokens_per_s']:.2f}, "
          f"training x{bf16['training_tokens_per_s'] / fp32['training_tokens_per_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
