"""Peak memory of one update per algorithm against one plain SFT step, same model and same batch.

Each measurement runs in a fresh subprocess: build model + batch, reset the kernel's peak-RSS
counter (/proc/self/clear_refs 5), run one optimiser step, read VmHWM. The figure is the peak
minus the resident size before the step (what the step itself needed). Also seconds per update.
LOOP's goal: <= 1.1x the SFT step (one copy of the model, no critic, no reference).

  python benchmarks/memory_bench.py [--model smollm2-135m] [--batch 4] [--tokens 512]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

MODES = {  # name -> config overrides (sft has none: it is not an algorithm)
    "sft": [],
    "loop": ["algorithm.name=loop"],
    "rloo": ["algorithm.name=rloo"],
    "grpo+kl": ["algorithm.name=grpo", "algorithm.kl_coef=0.04"],
    "ppo+critic": ["algorithm.name=ppo"],
}


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(mode: str, model_name: str, batch: int, tokens: int) -> dict:
    """One step of `mode` in this process; returns peak extra MiB and seconds."""
    import torch

    torch.set_num_threads(1)
    from idagym.agents.models import load_model_and_tokenizer
    from idagym.agents.scoring import token_logprobs
    from idagym.algorithms.trainer import Trainer
    from idagym.buffer import RolloutBuffer, Trajectory
    from idagym.config import load_config

    lora = model_name != "tiny"
    cfg = load_config(None, [f"model.name={model_name}", f"model.lora={str(lora).lower()}", "train.env=idagym/Lookup-v0",
                             f"train.minibatch_size={batch}", "train.epochs=1", "train.progress=false", *MODES[mode]])
    model, tok = load_model_and_tokenizer(cfg.model)
    # a multi-turn layout: 1/4 prompt, then alternating generated / observation chunks of 64 tokens
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(10, min(len(tok), 30000), (batch, tokens), generator=gen)
    mask = torch.zeros(batch, tokens)
    turn = torch.full((batch, tokens), -1, dtype=torch.long)
    for k, start in enumerate(range(tokens // 4, tokens, 128)):
        mask[:, start : start + 64] = 1
        turn[:, start : start + 64] = k
    with torch.no_grad():
        old = token_logprobs(model(input_ids=ids).logits, ids) * mask
    trajs = [Trajectory(task_id=f"t{i // 2}", group_id=i // 2, input_ids=ids[i].tolist(), loss_mask=mask[i].int().tolist(),
                        logprobs=old[i].tolist(), turn_index=turn[i].tolist(), reward=float(i % 2)) for i in range(batch)]

    class NoCollector:
        def collect(self, *a):
            raise AssertionError

    trainer = Trainer(cfg, model, NoCollector(), ["t0"], pad_token_id=0)
    if mode == "sft":
        data = RolloutBuffer(trajs).to_batch()
        labels = data.input_ids.masked_fill(data.loss_mask == 0, -100)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak-RSS counter: setup does not count
    rss0 = _status_kb("VmRSS")
    t0 = time.perf_counter()
    if mode == "sft":
        loss = model(input_ids=data.input_ids, attention_mask=data.attention_mask, labels=labels).loss
        trainer.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainer.params, 1.0)
        trainer.optimizer.step()
    else:
        trainer.update(trajs)
    seconds = time.perf_counter() - t0
    return {"mode": mode, "peak_extra_mib": (_status_kb("VmHWM") - rss0) / 1024, "seconds": seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m", help="smollm2-135m (LoRA) or tiny (full fine-tune)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.model, args.batch, args.tokens)))
        return 0
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    print(f"model {args.model}, batch {args.batch} x {args.tokens} tokens, load average {os.getloadavg()[0]:.1f}")
    results = {}
    for mode in MODES:
        out = subprocess.run([sys.executable, __file__, "--one", mode, "--model", args.model, "--batch", str(args.batch),
                              "--tokens", str(args.tokens)], env=env, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(f"{mode}: failed\n{out.stderr[-2000:]}")
            return 1
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    sft = results["sft"]
    print(f"{'update':<12}{'peak extra MiB':>16}{'x SFT':>8}{'seconds':>10}")
    for mode, r in results.items():
        print(f"{mode:<12}{r['peak_extra_mib']:>16.0f}{r['peak_extra_mib'] / sft['peak_extra_mib']:>8.2f}{r['seconds']:>10.2f}")
    ratio = results["loop"]["peak_extra_mib"] / sft["peak_extra_mib"]
    print(f"LOOP / SFT peak memory: {ratio:.2f} (goal <= 1.1): {'ok' if ratio <= 1.1 else 'over'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
