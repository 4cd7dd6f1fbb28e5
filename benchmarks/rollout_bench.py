"""Rollout benchmark: the collector's sampling against a bare `model.generate` loop, and tokens
encoded per episode with and without KV-cache reuse as episodes get longer; with `--backend vllm`,
the collector on a vLLM server against the collector on our transformers sampler, without and with
a LoRA adapter (same prompts, model and sampling).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/rollout_bench.py [--model tiny|smollm2-135m]
    python benchmarks/rollout_bench.py --backend vllm [--model smollm2-135m --batch 8 --max-new 256]

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


def collector_tok_s(model, tok, backend, batch: int, max_new: int, seed: int) -> float:
    """Tokens per second of one collection of `batch` one-turn episodes through `backend`."""
    policy = TransformersPolicy(model, tok, PolicyConfig(max_new_tokens=max_new, action_format="raw", system_prompt=""),
                                backend=backend)
    with Collector(lambda: ChatEnv(max_turns=1), policy, num_envs=batch, progress=False) as collector:
        before, t0 = backend.stats["tokens_generated"], time.perf_counter()
        collector.collect(collector.task_ids("train")[:batch], group_size=1, seed=seed)
        return (backend.stats["tokens_generated"] - before) / (time.perf_counter() - t0)


def vllm_against_ours(model_name: str, batch: int, max_new: int, repeats: int) -> None:
    from idagym.agents.backends import TransformersBackend
    from idagym.agents.models import add_lora
    from idagym.agents.vllm_backend import VLLMBackend, VLLMServer

    model, tok = load_model_and_tokenizer(ModelConfig(name=model_name))
    print(f"\n## vLLM server vs our sampler: {model_name}, batch {batch}, up to {max_new} new tokens, median of {repeats}")
    print("| LoRA | ours tok/s | vLLM tok/s | vLLM / ours |\n|---|---|---|---|")
    with VLLMServer(model.name_or_path, max_model_len=2048, max_lora_rank=16) as server:  # the base weights, as loaded
        for lora in (False, True):
            if lora:  # an adapter as after some training: B no longer zero
                model = add_lora(model, ModelConfig(name=model_name, lora=True))
                with torch.no_grad():
                    for name, p in model.named_parameters():
                        if "lora_B" in name:
                            p.normal_(0, 0.01)
            ours, remote = TransformersBackend(model, tok.pad_token_id), VLLMBackend(server.url)
            if lora:
                remote.load_weights(model)
            hf, vl = [], []
            for r in range(repeats + 1):  # interleaved; the first round warms up
                a = collector_tok_s(model, tok, ours, batch, max_new, r)
                b = collector_tok_s(model, tok, remote, batch, max_new, r)
                if r:
                    hf.append(a)
                    vl.append(b)
            remote.close()
            print(f"| {'yes' if lora else 'no'} | {statistics.median(hf):.0f} | {statistics.median(vl):.0f} | "
                  f"{statistics.median(vl) / statistics.median(hf):.2f} |", flush=True)
        print(f"\nprefix cache hits over all the server's requests: {prefix_cache_hit_rate(server.url):.1%} of prompt tokens")


def prefix_cache_hit_rate(url: str) -> float:
    """Hits / queries of the server's prefix cache, from its Prometheus counters."""
    import httpx

    counts = {"hits": 0.0, "queries": 0.0}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        for key in counts:
            if line.startswith(f"vllm:prefix_cache_{key}_total"):
                counts[key] += float(line.rsplit(" ", 1)[1])
    return counts["hits"] / counts["queries"] if counts["queries"] else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default 1; with --backend vllm all cores, as the server's)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-new", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--turns", default="1,2,4,8,16")
    parser.add_argument("--backend", choices=["hf", "vllm"], default="hf",
                        help="vllm: compare a vLLM server with our sampler instead (needs model smollm2-135m or a folder)")
    args = parser.parse_args()
    args.threads = args.threads or (os.cpu_count() if args.backend == "vllm" else 1)
    torch.set_num_threads(args.threads)
    if args.backend == "vllm":
        print(f"{args.threads} thread(s) for ours, load average {os.getloadavg()[0]:.2f}")
        # vLLM serves a folder of weights: the tiny models are built in code
        vllm_against_ours("smollm2-135m" if args.model == "tiny" else args.model, args.batch, args.max_new, args.repeats)
        print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
        return
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
