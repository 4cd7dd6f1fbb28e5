"""Token-in/token-out of TransformersPolicy: stored ids, loss mask and behaviour log-probs."""

from __future__ import annotations

import os
from itertools import pairwise

import pytest
import torch

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
torch.set_num_threads(1)

from idagym.agents.backends import TransformersBackend  # noqa: E402
from idagym.agents.config import ModelConfig, PolicyConfig  # noqa: E402
from idagym.agents.hf_policy import TransformersPolicy, score_batch  # noqa: E402
from idagym.agents.models import load_model_and_tokenizer  # noqa: E402
from idagym.buffer import RolloutBuffer  # noqa: E402
from idagym.collector import Collector  # noqa: E402
from idagym.core import DigitalEnv, Evaluation  # noqa: E402

SYSTEM = "You are a test agent."


class EchoEnv(DigitalEnv):
    """Replies with a task-dependent amount of text, so episodes differ in length; never terminates."""

    def __init__(self, max_turns: int = 3):
        super().__init__(max_turns=max_turns)

    def task_ids(self, split: str) -> list[str]:
        return [f"t{i}" for i in range(6)]

    def open_task(self, task_id: str, seed: int | None) -> str:
        return f"Task {task_id}: " + "say something " * (1 + int(task_id[1:]))

    def execute(self, action: str) -> str:
        return f"you said {len(action)} chars " + "." * (len(action) % 7)

    def task_completed(self) -> bool:
        return False

    def evaluate(self) -> Evaluation:
        return Evaluation(0, 1)


@pytest.fixture(scope="module")
def tiny():
    return load_model_and_tokenizer(ModelConfig(name="tiny", seed=3))


def collect(model_tok, *, num_envs=6, group_size=2, seed=0, **policy_kwargs):
    model, tok = model_tok
    cfg = PolicyConfig(**{"max_new_tokens": 12, "system_prompt": SYSTEM, "action_format": "raw", **policy_kwargs})
    policy = TransformersPolicy(model, tok, cfg)
    collector = Collector(EchoEnv, policy, num_envs=num_envs, progress=False)
    trajs = collector.collect(collector.task_ids("train"), group_size=group_size, seed=seed)
    collector.close()
    return policy, trajs


def test_rescoring_reproduces_behaviour_logprobs(tiny):
    _, trajs = collect(tiny, temperature=0.7)
    batch = RolloutBuffer(trajs).to_batch(pad_token_id=tiny[1].pad_token_id)
    with torch.no_grad():
        logprobs = score_batch(tiny[0], batch, temperature=0.7)
    diff = ((logprobs - batch.old_logprobs) * batch.loss_mask).abs().max().item()
    assert batch.loss_mask.sum() > 50
    assert diff < 1e-4  # cached, left-padded sampling vs one right-padded forward: float noise only


def segments(traj, mask_value):
    """Runs of consecutive tokens with loss_mask == mask_value, as id lists."""
    out, run = [], []
    for tok, m in zip(traj.input_ids, traj.loss_mask, strict=True):
        if m == mask_value:
            run.append(tok)
        elif run:
            out.append(run)
            run = []
    return out + ([run] if run else [])


def test_loss_mask_separates_prompt_and_responses(tiny):
    _, tok = tiny
    _, trajs = collect(tiny)
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    for traj in trajs:
        assert len(traj.turns) == 3 and traj.truncated
        responses = segments(traj, 1)
        assert len(responses) == len(traj.turns)
        # mask 1: exactly the model's responses, turn by turn
        for ids, turn in zip(responses, traj.turns, strict=True):
            assert tok.decode(ids, skip_special_tokens=True) == turn.response
        # mask 0: exactly the ChatML prompt and the env's replies, written out by hand here
        expected = f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{traj.turns[0].observation}<|im_end|>\n<|im_start|>assistant\n"
        for ids, turn in zip(responses[:-1], traj.turns[1:], strict=True):
            closed = ids[-1] == im_end
            expected += ("" if closed else "<|im_end|>") + f"\n<|im_start|>user\n{turn.observation}<|im_end|>\n<|im_start|>assistant\n"
        assert "".join(tok.decode(ids) for ids in segments(traj, 0)) == expected
        # behaviour log-probs sit exactly on the generated tokens, turn indices too
        assert all((lp < 0) == bool(m) or lp == 0 for lp, m in zip(traj.logprobs, traj.loss_mask, strict=True))
        assert {t for t, m in zip(traj.turn_index, traj.loss_mask, strict=True) if m} == {0, 1, 2}


def test_kv_cache_reuse_gives_identical_trajectories(tiny):
    with_cache, a = collect(tiny, kv_cache=True)
    without, b = collect(tiny, kv_cache=False)
    assert len({len(t.input_ids) for t in a}) > 3  # batched episodes of different lengths
    for x, y in zip(a, b, strict=True):
        assert x.input_ids == y.input_ids and x.loss_mask == y.loss_mask
        assert max(abs(p - q) for p, q in zip(x.logprobs, y.logprobs, strict=True)) < 1e-4
    assert with_cache.stats["tokens_generated"] == without.stats["tokens_generated"]
    assert with_cache.stats["tokens_encoded"] < 0.6 * without.stats["tokens_encoded"]


class StatelessBackend(TransformersBackend):
    """A backend as a server would be: it keeps nothing between calls and sees only token ids."""

    def __init__(self, model, pad_id):
        super().__init__(model, pad_id, kv_cache=False)
        self.contexts: dict[int, list[list[int]]] = {}
        self.live: set[int] = set()

    def generate(self, requests, sampling):
        for r in requests:
            self.contexts.setdefault(r.key, []).append(list(r.context))
            self.live.add(r.key)
        return super().generate(requests, sampling)

    def release(self, key):
        self.live.discard(key)


def test_a_backend_continues_the_trajectory_context_and_the_policy_keeps_the_books(tiny):
    _, expected = collect(tiny)
    model, tok = tiny
    policy = TransformersPolicy(model, tok, PolicyConfig(max_new_tokens=12, system_prompt=SYSTEM, action_format="raw"),
                                backend=StatelessBackend(model, tok.pad_token_id))
    collector = Collector(EchoEnv, policy, num_envs=6, progress=False)
    trajs = collector.collect(collector.task_ids("train"), group_size=2, seed=0)
    collector.close()
    assert [t.input_ids for t in trajs] == [t.input_ids for t in expected]  # same samples, same bookkeeping
    assert [t.loss_mask for t in trajs] == [t.loss_mask for t in expected]
    backend = policy.backend
    assert policy.stats is backend.stats and backend.live == set()  # every episode released at its end
    for calls in backend.contexts.values():  # each turn's request is the whole context so far
        assert len(calls) == 3 and all(later[: len(earlier)] == earlier for earlier, later in pairwise(calls))


def test_samples_do_not_depend_on_batch_composition(tiny):
    _, alone = collect(tiny, num_envs=1)
    _, batched = collect(tiny, num_envs=6)
    assert [t.input_ids for t in alone] == [t.input_ids for t in batched]
    _, other_seed = collect(tiny, num_envs=6, seed=1)
    assert [t.input_ids for t in other_seed] != [t.input_ids for t in batched]


def test_context_limit_ends_episode_truncated(tiny):
    _, trajs = collect(tiny, max_new_tokens=40, max_context_tokens=90, group_size=1)
    assert all(t.truncated and len(t.input_ids) <= 90 for t in trajs)
    assert any(len(t.turns) < 3 for t in trajs)  # cut by the policy before the env's turn limit
    # a prompt that alone passes the limit gives an empty, truncated trajectory
    _, trajs = collect(tiny, max_context_tokens=20, group_size=1)
    assert all(t.truncated and not t.turns and not t.input_ids for t in trajs)


def test_code_block_action_and_top_p(tiny):
    policy = TransformersPolicy(*tiny, PolicyConfig(max_new_tokens=8))
    traj = policy.start("t0", 0, "hello")
    [action] = policy.act([traj])
    assert action.startswith("print(") and "no ```python code block" in action  # random bytes hold no code
    assert len(traj.turns) == 1 and 1 <= traj.num_generated <= 8
    # a tiny nucleus keeps only the top token: sampling turns greedy
    greedy = TransformersPolicy(*tiny, PolicyConfig(max_new_tokens=8, temperature=0.0))
    nucleus = TransformersPolicy(*tiny, PolicyConfig(max_new_tokens=8, top_p=1e-6))
    runs = []
    for policy in (greedy, nucleus):
        traj = policy.start("t0", 0, "hello")
        policy.act([traj])
        runs.append(traj.input_ids)
    assert runs[0] == runs[1]
