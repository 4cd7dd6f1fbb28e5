"""A Hugging Face transformers policy with its own sampling loop (token-in/token-out).

Per trajectory it records the ids of the whole multi-turn context exactly as the model saw them,
a loss mask built while generating (1 only on sampled tokens) and the behaviour log-probs of the
sampled tokens under `agents.scoring` semantics. The env's reply is tokenised once and appended
between chat-template pieces; the history is never re-tokenised.

With `kv_cache=True` each episode keeps its key/values between turns, so a turn encodes only
the tokens added since the last one. For a batch, the caches are left-padded to one length
(attention-mask zeros, explicit position ids); afterwards each row keeps only its real columns.
Every trajectory has its own torch.Generator, seeded from (seed, task, group, sample index), so
samples do not depend on which other episodes share the batch, nor on `kv_cache`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from idagym.agents.base import Policy
from idagym.agents.config import ModelConfig, PolicyConfig
from idagym.agents.prompts import extract_action, system_prompt
from idagym.agents.scoring import next_token_logp, token_logprobs
from idagym.buffer import Trajectory, Turn

KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (keys, values), each [1, heads, length, dim]


@dataclass
class _Episode:
    generator: torch.Generator
    observation: str  # shown in the next turn
    pending: list[int] = field(default_factory=list)  # ids in the trajectory not yet in `cache`
    cache: KV | None = None
    ended_with_eot: bool = True


def _seed(*parts: Any) -> int:
    """A stable 63-bit seed from parts (Python's hash() of str changes per process)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


class TransformersPolicy(Policy):
    """Samples responses for many episodes at once from a causal LM (optionally LoRA-wrapped).

    `stats` counts tokens encoded (forwarded through the model), generated, and forward calls.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        cfg: PolicyConfig | None = None,
        *,
        apis: str = "",
    ):
        self.model, self.tokenizer = model, tokenizer
        self.cfg = cfg or PolicyConfig()
        if self.cfg.temperature < 0 or not 0 < self.cfg.top_p <= 1:
            raise ValueError("temperature must be >= 0 and top_p in (0, 1]")
        self.device = next(model.parameters()).device
        im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.eot_id = im_end if isinstance(im_end, int) and im_end != tokenizer.unk_token_id else tokenizer.eos_token_id
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eot_id
        self.eot_text = tokenizer.convert_ids_to_tokens(self.eot_id)
        prompt = self.cfg.system_prompt
        self.system = system_prompt(self.cfg.action_format, apis) if prompt is None else prompt
        self._before_obs, self._after_obs = self._user_turn_pieces()
        self.seed = self.cfg.seed
        self._episodes: dict[int, _Episode] = {}
        self._starts: Counter[tuple[str, int]] = Counter()
        self.stats = {"tokens_encoded": 0, "tokens_generated": 0, "forward_calls": 0}

    @classmethod
    def from_config(
        cls, model_cfg: ModelConfig, policy_cfg: PolicyConfig, env: Any = None, device: str | torch.device = "cpu"
    ) -> TransformersPolicy:
        """Load the model onto `device` and build the policy; `env` supplies the vocabulary (tiny-word)
        and API list."""
        from idagym.agents.models import load_model_and_tokenizer

        base = getattr(env, "unwrapped", env)
        vocabulary = base.vocabulary() if base is not None else None
        model, tokenizer = load_model_and_tokenizer(model_cfg, vocabulary=vocabulary, device=device)
        apis = base.describe_apis() if base is not None and policy_cfg.action_format == "code_block" else ""
        return cls(model, tokenizer, policy_cfg, apis=apis)

    def set_seed(self, seed: int) -> None:
        """New random streams for the next episodes (call once per collection round)."""
        self.seed = seed
        self._starts.clear()

    # ---- Policy API ---------------------------------------------------------------------------
    def start(self, task_id: str, group_id: int, observation: str) -> Trajectory:
        traj = Trajectory(task_id=task_id, group_id=group_id)
        messages = ([{"role": "system", "content": self.system}] if self.system else []) + [
            {"role": "user", "content": observation}
        ]
        ids = self._encode(self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
        k = self._starts[(task_id, group_id)]
        self._starts[(task_id, group_id)] += 1
        gen = torch.Generator().manual_seed(_seed(self.seed, task_id, group_id, k))
        self._episodes[id(traj)] = _Episode(generator=gen, observation=observation)
        if len(ids) >= self.cfg.max_context_tokens:
            traj.truncated = True
            return traj
        traj.extend(ids, generated=False)
        self._episodes[id(traj)].pending = list(ids)
        return traj

    def act(self, trajectories: list[Trajectory]) -> list[str]:
        actions = [""] * len(trajectories)
        rows, budgets = [], []
        for i, traj in enumerate(trajectories):
            room = self.cfg.max_context_tokens - len(traj.input_ids)
            if room < 1 or traj.done:
                traj.truncated = traj.truncated or not traj.terminated
                continue
            rows.append(i)
            budgets.append(min(self.cfg.max_new_tokens, room))
        if not rows:
            return actions
        batch = [trajectories[i] for i in rows]
        with torch.no_grad():
            generated, logprobs = self._generate(batch, budgets)
        for i, traj, ids, lps in zip(rows, batch, generated, logprobs, strict=True):
            ep = self._episodes[id(traj)]
            response = self.tokenizer.decode(ids, skip_special_tokens=True)
            actions[i] = extract_action(response, self.cfg.action_format)
            traj.turns.append(Turn(observation=ep.observation, response=response, action=actions[i]))
            traj.extend(ids, generated=True, logprobs=lps)
            ep.ended_with_eot = ids[-1] == self.eot_id
        return actions

    def demonstrate(self, trajectory: Trajectory, action: str) -> str:
        """Append `action` as if this policy had generated it: the response text the action format
        expects and its tokens with loss mask 1, ended by the end-of-turn token when the turn's token
        budget leaves room for it, as sampling would (behaviour log-probs 0: a demonstration has no
        sampling distribution). A response the policy could not generate within `max_new_tokens`
        or its context ends the trajectory truncated. Returns the action the env gets."""
        ep = self._episodes[id(trajectory)]
        response = action if self.cfg.action_format == "raw" else f"```python\n{action.strip(chr(10))}\n```"
        ids = self._encode(response)
        ends_turn = len(ids) < self.cfg.max_new_tokens
        ids += [self.eot_id] if ends_turn else []
        if len(ids) > self.cfg.max_new_tokens or len(trajectory.input_ids) + len(ids) > self.cfg.max_context_tokens:
            trajectory.truncated = True
            return ""
        trajectory.turns.append(Turn(observation=ep.observation, response=response, action=action))
        trajectory.extend(ids, generated=True, logprobs=[0.0] * len(ids))
        ep.pending += ids
        ep.ended_with_eot = ends_turn
        return extract_action(response, self.cfg.action_format)

    def observe(self, trajectory: Trajectory, observation: str) -> None:
        ep = self._episodes[id(trajectory)]
        ep.observation = observation
        before = self._before_obs
        if ep.ended_with_eot and before.startswith(self.eot_text):
            before = before[len(self.eot_text) :]  # the model already said it
        ids = self._encode(before + observation + self._after_obs)
        if len(trajectory.input_ids) + len(ids) >= self.cfg.max_context_tokens:
            trajectory.truncated = True  # no room left to answer
            return
        trajectory.extend(ids, generated=False)
        ep.pending += ids

    def end(self, trajectory: Trajectory) -> None:
        self._episodes.pop(id(trajectory), None)

    # ---- internals ----------------------------------------------------------------------------
    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _user_turn_pieces(self) -> tuple[str, str]:
        """Template text between an assistant response and the next observation, and after it
        (up to the assistant header), found by rendering a conversation with marker strings."""
        mark_a, mark_b = "QQASSISTANTQQ", "QQOBSERVATIONQQ"
        messages = [
            {"role": "user", "content": "QQUSERQQ"},
            {"role": "assistant", "content": mark_a},
            {"role": "user", "content": mark_b},
        ]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        tail = text[text.index(mark_a) + len(mark_a) :]
        before, after = tail.split(mark_b)
        return before, after

    def _generate(self, trajs: list[Trajectory], budgets: list[int]) -> tuple[list[list[int]], list[list[float]]]:
        """Sample one response per trajectory; batched, with per-row generators and stop rules."""
        eps = [self._episodes[id(t)] for t in trajs]
        reuse = self.cfg.kv_cache
        new = [ep.pending if reuse else t.input_ids for ep, t in zip(eps, trajs, strict=True)]
        past = [ep.cache if reuse else None for ep in eps]
        past_len = [0 if p is None else p[0][0].shape[2] for p in past]
        b, p_max, n_max = len(trajs), max(past_len), max(map(len, new))
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
        cache = DynamicCache(self._pad_caches(past, past_len, p_max)) if p_max else None
        attn, next_pos = attn.to(dev), torch.tensor([c + len(x) for c, x in zip(past_len, new, strict=True)], device=dev)
        out = self.model(
            input_ids=input_ids.to(dev), attention_mask=attn, position_ids=pos.to(dev), cache=cache, use_cache=True, logits_to_keep=1
        )
        self.stats["tokens_encoded"] += sum(map(len, new))
        self.stats["forward_calls"] += 1

        generated: list[list[int]] = [[] for _ in range(b)]
        logprobs: list[list[float]] = [[] for _ in range(b)]
        active = [True] * b
        while True:
            tokens, lps = self._sample(out.logits[:, -1], [ep.generator for ep in eps], active)
            for i, (token, lp) in enumerate(zip(tokens.tolist(), lps.tolist(), strict=True)):  # plain ints: fast
                if active[i]:
                    generated[i].append(token)
                    logprobs[i].append(lp)
                    active[i] = token != self.eot_id and len(generated[i]) < budgets[i]
            if not any(active):
                break
            # feed the new tokens; rows that just finished feed theirs masked out (it stays pending)
            fed = torch.tensor(active, dtype=torch.long, device=dev)
            attn = torch.cat([attn, fed[:, None]], dim=1)
            out = self.model(
                input_ids=tokens[:, None].to(dev), attention_mask=attn, position_ids=next_pos[:, None], cache=out.cache, use_cache=True
            )
            next_pos = next_pos + 1
            self.stats["tokens_encoded"] += int(sum(active))
            self.stats["forward_calls"] += 1
        self.stats["tokens_generated"] += sum(map(len, generated))

        for i, ep in enumerate(eps):
            if reuse:  # keep this row's real columns: everything but the last sampled token
                keep = attn[i].bool()
                ep.cache = [(layer.keys[i : i + 1, :, keep], layer.values[i : i + 1, :, keep]) for layer in out.cache.layers]
                ep.pending = [generated[i][-1]]
            else:
                ep.cache, ep.pending = None, []
        return generated, logprobs

    def _pad_caches(self, past: list[KV | None], past_len: list[int], p_max: int) -> KV:
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

    def _sample(
        self, logits: torch.Tensor, generators: list[torch.Generator], active: list[bool]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Next token per row and its log-prob under `token_logprobs` semantics (temperature-scaled
        softmax, before top-p). Only active rows draw from their generator. Temperature 0: greedy,
        log-probs at temperature 1."""
        temperature = self.cfg.temperature or 1.0
        logp = next_token_logp(logits, temperature)
        if self.cfg.temperature == 0:
            tokens = logp.argmax(-1)
        else:
            probs = logp.exp()
            if self.cfg.top_p < 1:
                sorted_p, order = probs.sort(dim=-1, descending=True)
                drop = sorted_p.cumsum(-1) - sorted_p > self.cfg.top_p
                probs = probs.scatter(-1, order, sorted_p.masked_fill(drop, 0.0))
            cdf = probs.cumsum(-1)
            # the per-trajectory generators live on the host: a draw does not depend on the device
            u = [torch.rand((), generator=g, device="cpu").item() if on else 1.0 for g, on in zip(generators, active, strict=True)]
            u = torch.tensor(u, device=cdf.device)
            tokens = (cdf < (u * cdf[:, -1])[:, None]).sum(-1).clamp(max=logits.shape[-1] - 1)
        picked = logp.gather(-1, tokens[:, None]).squeeze(-1)
        return tokens.cpu(), picked.cpu()


def score_batch(
    model: PreTrainedModel, batch: Any, temperature: float = 1.0, *, return_hidden: bool = False
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Log-probs [N, T] of every token of a right-padded `RolloutBuffer.to_batch()` batch under the
    current weights (one forward), aligned with `batch.old_logprobs`; multiply by `batch.loss_mask`.
    With `return_hidden`, also the last hidden state [N, T, H] (where a value head plugs in)."""
    device = next(model.parameters()).device
    input_ids = batch.input_ids.to(device)
    out = model(input_ids=input_ids, attention_mask=batch.attention_mask.to(device), output_hidden_states=return_hidden)
    logprobs = token_logprobs(out.logits, input_ids, temperature)
    return (logprobs, out.hidden_states[-1]) if return_hidden else logprobs
