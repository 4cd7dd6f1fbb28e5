"""Generation backends: continue token-id contexts, return the new ids and their log-probs.

The policy (`agents.hf_policy`) owns the token bookkeeping: contexts, loss masks, behaviour
log-probs, turn ends. A backend only continues contexts. `generate` gets one `Request` per
episode: the episode's whole context so far, its budget of new tokens and its own random stream.
It returns the sampled ids (ending with `stop_id` when the turn ended) and the log-prob of each
under `agents.scoring.next_token_logp` at the sampling temperature, the rule the trainer scores with.

`TransformersBackend` runs a Hugging Face model in this process, with each episode's key/values
kept between turns (`kv_cache`), so a turn encodes only the tokens added since the last one. A
server backend (e.g. vLLM) implements the same two methods; its prefix cache plays the KV's part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from transformers import DynamicCache, PreTrainedModel

from idagym.agents.scoring import next_token_logp

KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (keys, values), each [1, heads, length, dim]


class BackendError(RuntimeError):
    """The generation backend failed (a server died or hung); the message is one line saying what to do."""


@dataclass
class Request:
    """One episode's next turn: continue `context` by at most `budget` tokens."""

    key: int  # the episode (a backend may keep per-episode state under it until `release`)
    context: list[int]  # every token of the episode so far
    budget: int
    generator: torch.Generator  # the episode's random stream: samples do not depend on the batch


@dataclass
class Sampling:
    temperature: float  # 0: greedy (log-probs at temperature 1)
    top_p: float
    stop_id: int  # the end-of-turn token


class Backend(Protocol):
    stats: dict[str, int]  # tokens_encoded, tokens_generated, forward_calls

    def generate(self, requests: list[Request], sampling: Sampling) -> list[tuple[list[int], list[float]]]: ...

    def release(self, key: int) -> None:
        """The episode ended: drop what is kept for it."""


class TransformersBackend:
    """Batched sampling from a causal LM in this process, with per-episode KV reuse.

    For a batch, the episodes' caches are left-padded to one length (attention-mask zeros, explicit
    position ids); afterwards each row keeps only its real columns. Each row draws from its own
    generator, so a sample does not depend on which other episodes share the batch, nor on `kv_cache`.
    """

    def __init__(self, model: PreTrainedModel, pad_id: int, kv_cache: bool = True):
        self.model, self.pad_id, self.kv_cache = model, pad_id, kv_cache
        self.device = next(model.parameters()).device
        self._caches: dict[int, KV] = {}  # per episode: the keys/values of context[:cached length]
        self.stats = {"tokens_encoded": 0, "tokens_generated": 0, "forward_calls": 0}

    def release(self, key: int) -> None:
        self._caches.pop(key, None)

    @torch.no_grad()
    def generate(self, requests: list[Request], sampling: Sampling) -> list[tuple[list[int], list[float]]]:
        past = [self._caches.get(r.key) if self.kv_cache else None for r in requests]
        past_len = [0 if p is None else p[0][0].shape[2] for p in past]
        new = [r.context[c:] for r, c in zip(requests, past_len, strict=True)]
        b, p_max, n_max = len(requests), max(past_len), max(map(len, new))
        dev = self.device

        # layout of row i: [pad | its cache (c_i) | pad | its new tokens (n_i)], pads masked out;
        # built on the host (row by row), then moved to the model's device once
        host = torch.device("cpu")
        input_ids = torch.full((b, n_max), self.pad_id, dtype=torch.long, device=host)
        attn = torch.zeros((b, p_max + n_max), dtype=torch.long, device=host)
        pos = torch.zeros((b, n_max), dtype=torch.long, device=host)
        for i, (ids, c) in enumerate(zip(new, past_len, strict=True)):
            n = len(ids)
            input_ids[i, n_max - n :] = torch.tensor(ids, device=host)
            attn[i, p_max - c : p_max] = 1
            attn[i, p_max + n_max - n :] = 1
            pos[i, n_max - n :] = torch.arange(c, c + n, device=host)
        cache = DynamicCache(_pad_caches(past, past_len, p_max)) if p_max else None
        attn, next_pos = attn.to(dev), torch.tensor([c + len(x) for c, x in zip(past_len, new, strict=True)], device=dev)
        out = self.model(
            input_ids=input_ids.to(dev), attention_mask=attn, position_ids=pos.to(dev), cache=cache, use_cache=True, logits_to_keep=1
        )
        self.stats["tokens_encoded"] += sum(map(len, new))
        self.stats["forward_calls"] += 1

        generated: list[list[int]] = [[] for _ in range(b)]
        logprobs: list[list[float]] = [[] for _ in range(b)]
        active = [True] * b
        generators = [r.generator for r in requests]
        while True:
            tokens, lps = sample(out.logits[:, -1], sampling, generators, active)
            for i, (token, lp) in enumerate(zip(tokens.tolist(), lps.tolist(), strict=True)):  # plain ints: fast
                if active[i]:
                    generated[i].append(token)
                    logprobs[i].append(lp)
                    active[i] = token != sampling.stop_id and len(generated[i]) < requests[i].budget
            if not any(active):
                break
            # feed the new tokens; rows that just finished feed theirs masked out (it is encoded next turn)
            fed = torch.tensor(active, dtype=torch.long, device=dev)
            attn = torch.cat([attn, fed[:, None]], dim=1)
            out = self.model(
                input_ids=tokens[:, None].to(dev), attention_mask=attn, position_ids=next_pos[:, None], cache=out.cache, use_cache=True
            )
            next_pos = next_pos + 1
            self.stats["tokens_encoded"] += int(sum(active))
            self.stats["forward_calls"] += 1
        self.stats["tokens_generated"] += sum(map(len, generated))

        if self.kv_cache:  # keep each row's real columns: its context and all but its last sampled token
            for i, r in enumerate(requests):
                keep = attn[i].bool()
                self._caches[r.key] = [(layer.keys[i : i + 1, :, keep], layer.values[i : i + 1, :, keep])
                                       for layer in out.cache.layers]
        return list(zip(generated, logprobs, strict=True))


def _pad_caches(past: list[KV | None], past_len: list[int], p_max: int) -> KV:
    """One batch cache: each row's keys/values right-aligned at p_max, zeros (masked) before."""
    ref = next(p for p in past if p is not None)
    layers = []
    for layer, (k0, v0) in enumerate(ref):
        keys = k0.new_zeros((len(past), k0.shape[1], p_max, k0.shape[3]))
        values = v0.new_zeros((len(past), v0.shape[1], p_max, v0.shape[3]))
        for i, (p, c) in enumerate(zip(past, past_len, strict=True)):
            if p is not None and c:
                keys[i, :, p_max - c :] = p[layer][0][0]
                values[i, :, p_max - c :] = p[layer][1][0]
        layers.append((keys, values))
    return layers


def sample(
    logits: torch.Tensor, sampling: Sampling, generators: list[torch.Generator], active: list[bool]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Next token per row and its log-prob under `next_token_logp` (temperature-scaled softmax,
    before top-p). Only active rows draw from their generator. Temperature 0: greedy, log-probs at
    temperature 1."""
    logp = next_token_logp(logits, sampling.temperature or 1.0)
    if sampling.temperature == 0:
        tokens = logp.argmax(-1)
    else:
        probs = logp.exp()
        if sampling.top_p < 1:
            sorted_p, order = probs.sort(dim=-1, descending=True)
            drop = sorted_p.cumsum(-1) - sorted_p > sampling.top_p
            probs = probs.scatter(-1, order, sorted_p.masked_fill(drop, 0.0))
        cdf = probs.cumsum(-1)
        # the per-episode generators live on the host: a draw does not depend on the device
        u = [torch.rand((), generator=g, device="cpu").item() if on else 1.0 for g, on in zip(generators, active, strict=True)]
        u = torch.tensor(u, device=cdf.device)
        tokens = (cdf < (u * cdf[:, -1])[:, None]).sum(-1).clamp(max=logits.shape[-1] - 1)
    picked = logp.gather(-1, tokens[:, None]).squeeze(-1)
    return tokens.cpu(), picked.cpu()
