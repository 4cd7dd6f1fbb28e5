"""The LLM policy (token-in/token-out) over a generation backend.

Per trajectory it records the ids of the whole multi-turn context exactly as the model saw them,
a loss mask built while generating (1 only on sampled tokens) and the behaviour log-probs of the
sampled tokens under `agents.scoring` semantics. The env's reply is tokenised once and appended
between chat-template pieces; the history is never re-tokenised.

The backend (`agents.backends`) only continues token-id contexts: by default a Hugging Face model
in this process, which with `kv_cache=True` keeps each episode's key/values between turns. Every
trajectory has its own torch.Generator, seeded from (seed, task, group, sample index), so samples
do not depend on which other episodes share the batch, nor on `kv_cache`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from idagym.agents.backends import Backend, Request, Sampling, TransformersBackend
from idagym.agents.base import Policy
from idagym.agents.config import ModelConfig, PolicyConfig
from idagym.agents.prompts import extract_action, system_prompt
from idagym.agents.scoring import token_logprobs
from idagym.buffer import Trajectory, Turn


@dataclass
class _Episode:
    generator: torch.Generator
    observation: str  # shown in the next turn
    ended_with_eot: bool = True


def _seed(*parts: Any) -> int:
    """A stable 63-bit seed from parts (Python's hash() of str changes per process)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


class TransformersPolicy(Policy):
    """Samples responses for many episodes at once from a causal LM (optionally LoRA-wrapped),
    through `backend` (default: the model itself, in this process).

    `stats` counts tokens encoded (forwarded through the model), generated, and forward calls.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        cfg: PolicyConfig | None = None,
        *,
        apis: str = "",
        backend: Backend | None = None,
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
        self.backend = backend or TransformersBackend(model, self.pad_id, kv_cache=self.cfg.kv_cache)
        self.sampling = Sampling(self.cfg.temperature, self.cfg.top_p, self.eot_id)

    @property
    def stats(self) -> dict[str, int]:
        return self.backend.stats

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
        backend = None
        if policy_cfg.backend == "vllm":
            from idagym.agents.vllm_backend import VLLMBackend, VLLMServer, served_folder

            server = None if policy_cfg.vllm_url else VLLMServer(
                served_folder(model), max_model_len=policy_cfg.max_context_tokens, max_lora_rank=model_cfg.lora_r).start()
            backend = VLLMBackend(policy_cfg.vllm_url or server.url, server=server)
            backend.load_weights(model)
        return cls(model, tokenizer, policy_cfg, apis=apis, backend=backend)

    def close(self) -> None:
        """Stop what the backend started (a server); the policy samples no more after it."""
        getattr(self.backend, "close", lambda: None)()

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
        self.backend.release(id(traj))  # an ended episode's id may be reused
        if len(ids) >= self.cfg.max_context_tokens:
            traj.truncated = True
            return traj
        traj.extend(ids, generated=False)
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
        requests = [Request(id(t), t.input_ids, budget, self._episodes[id(t)].generator)
                    for t, budget in zip(batch, budgets, strict=True)]
        for i, traj, (ids, lps) in zip(rows, batch, self.backend.generate(requests, self.sampling), strict=True):
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

    def end(self, trajectory: Trajectory) -> None:
        self._episodes.pop(id(trajectory), None)
        self.backend.release(id(trajectory))

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
