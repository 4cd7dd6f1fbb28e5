"""Rollout benchmark: the collector's sampling against a bare `model.generate` loop, and tokens
encoded per episode with and without KV-cache reuse as episodes get longer.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/rollout_bench.py [--model tiny|smollm2-135m]

Both sides of each comparison run in the same process, interleaved, on the same prompts; figures
are medians over repeats (absolute times on shared machines mean little, ratios do).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from idagym.agents.config import ModelConfig, PolicyConfig  # noqa: E402
from idagym.agents.hf_policy import TransformersPolicy  # noqa: E402
from idagym.agents.models import load_model_and_tokenizer  # noqa: E402
from idagym.collector import Collector  # noqa: E402
from idagym.core import DigitalEnv, Evaluation  # noqa: E402


class ChatEnv(DigitalEnv):
    """Fixed-length observations for `max_turns` turns; never terminates (so every episode runs all turns)."""

    def __init__(self, max_turns: int = 1, obs_words: int = 40):
        super().__init__(max_turns=max_turns)
        self.obs_words = obs_words

    def task_ids(self, split: str) -> list[str]:
        return [f"task{i}" for i in range(64)]

    def open_task(self, task_id: str, seed: int | None) -> str:
        return f"{task_id}: " + " ".join(["please summarise the following words"] * (self.obs_words // 5))

    def execute(self, action: str) -> str:
        return "output " + "x " * self.obs_words

    def task_completed(self) -> bool:
        return False

    def evaluate(self) -> Evaluation:
        return Evaluation(0, 1)


def generate_loop(model, tok, prompts: list[str], max_new: int, eot: int) -> int:
    """Bare baseline: left-padded batch, `model.generate` with sampling; returns tokens generated."""
    tok.padding_side = "left"
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    out = model.generate(**enc, do_sample=True, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=max_new,
                         eos_token_id=eot, pad_token_id=tok.pad_token_id)
    new = out[:, enc["input_ids"].shape[1] :]
    # count up to and including the first end-of-turn token per row (what the policy counts)
    total = 0
    for row in new.tolist():
        total += row.index(eot) + 1 if eot in row else len(row)
    return total


def throughput(model, tok, batch: int, max_new: int, repeats: int) -> dict:
    policy = TransformersPolicy(model, tok, PolicyConfig(max_new_tokens=max_new, action_format="raw", system_prompt=""))
    collector = Collector(lambda: ChatEnv(max_turns=1), policy, num_envs=batch, progress=False)
    tasks = collector.task_ids("train")[:batch]
    prompts = [tok.apply_chat_template([{"role": "user", "content": ChatEnv().open_task(t, None)}], tokenize=False,
                                       add_generation_prompt=True) for t in tasks]
    ours, base = [], []
    for r in range(repeats + 1):  # the first round warms up
        before = policy.stats["tokens_generated"]
        t0 = time.perf_counter()
        collector.collect(tasks, group_size=1, seed=r)
        t1 = time.perf_counter()
        n = generate_loop(model, tok, prompts, max_new, policy.eot_id)
        t2 = time.perf_counter()
        if r:
            ours.append((policy.stats["tokens_generated"] - before) / (t1 - t0))
            base.append(n / (t2 - t1))
    collector.close()
    return {"collector_tok_s": statistics.median(ours), "generate_tok_s": statistics.median(base),
            "ratio": statistics.median(ours) / statistics.median(base)}


def encoded_per_episode(model, tok, turns: int, kv: bool, episodes: int, max_new: int) -> tuple[float, float]:
    policy = TransformersPolicy(model, tok, PolicyConfig(max_new_tokens=max_new, action_format="raw", kv_cache=kv,
                                                         max_context_tokens=1 << 20, system_prompt=""))
    collector = Collector(lambda: ChatEnv(max_turns=turns, obs_words=20), policy, num_envs=episodes, progress=False)
    t0 = time.perf_counter()
    collector.collect(collector.task_ids("train")[:episodes], group_size=1, seed=0)
    seconds = time.perf_counter() - t0
    collector.close()
    return policy.stats["tokens_encoded"] / episodes, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-new", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--turns", default="1,2,4,8,16")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tok = load_model_and_tokenizer(ModelConfig(name=args.model))
    print(f"model {args.model}, {args.threads} thread(s), load average {os.getloadavg()[0]:.2f}")

    t = throughput(model, tok, args.batch, args.max_new, args.repeats)
    print(f"\n## generation, batch {args.batch}, up to {args.max_new} new tokens, median of {args.repeats}")
    print("| collector tok/s | model.generate tok/s | ratio |\n|---|---|---|")
    print(f"| {t['collector_tok_s']:.0f} | {t['generate_tok_s']:.0f} | {t['ratio']:.2f} |")

    print("\n## tokens encoded per episode (16 new tokens a turn, ~20-word observations)")
    print("| turns | with KV reuse | without | ratio | seconds with | seconds without |\n|---|---|---|---|---|---|")
    for turns in map(int, args.turns.split(",")):
        (on, s_on), (off, s_off) = (encoded_per_episode(model, tok, turns, kv, 4, 16) for kv in (True, False))
        print(f"| {turns} | {on:.0f} | {off:.0f} | {off / on:.2f} | {s_on:.2f} | {s_off:.2f} |")
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
