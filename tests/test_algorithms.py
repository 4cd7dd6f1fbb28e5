"""Each algorithm's advantages and loss, and the shared trainer's update path, on a real tiny model."""

import copy

import pytest
import torch

from idagym.agents.models import load_model_and_tokenizer
from idagym.agents.scoring import token_logprobs
from idagym.algorithms import ALGORITHMS, make_algorithm
from idagym.algorithms.trainer import Trainer, build
from idagym.buffer import RolloutBuffer, Trajectory, Turn
from idagym.config import AlgorithmConfig, load_config

torch.set_num_threads(1)
MASK = [0, 0, 0, 1, 1, 0, 0, 1, 1]  # prompt, response, observation, response
TURNS = [-1, -1, -1, 0, 0, -1, -1, 1, 1]


def scored_trajectories(model, rewards, groups, seed=0):
    """Trajectories of random tokens whose behaviour log-probs are the model's own (ratio 1 at start)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 250, (len(rewards), len(MASK)), generator=gen)
    with torch.no_grad():
        lp = token_logprobs(model(input_ids=ids).logits, ids) * torch.tensor(MASK)
    out = []
    for i, (r, g) in enumerate(zip(rewards, groups, strict=True)):
        out.append(Trajectory(task_id=f"t{g}", group_id=g, input_ids=ids[i].tolist(), loss_mask=list(MASK),
                              logprobs=lp[i].tolist(), turn_index=list(TURNS), turns=[Turn("o"), Turn("o")],
                              reward=r, success=r == 1.0, terminated=True))
    return out


class NoCollector:
    def collect(self, task_ids, group_size, seed):
        raise AssertionError("update tests do not collect")


def make_trainer(algo, *, lora=False, **overrides):
    cfg = load_config(None, [f"algorithm.name={algo}", "model.name=tiny", f"model.lora={str(lora).lower()}",
                             "train.lr=1e-2", "train.minibatch_size=4", "train.epochs=2", "train.progress=false",
                             "train.env=idagym/Lookup-v0", *[f"{k}={v}" for k, v in overrides.items()]])
    model, _ = load_model_and_tokenizer(cfg.model)
    return Trainer(cfg, model, NoCollector(), ["t0"], pad_token_id=0)


def seq_logp(model, trajs):
    batch = RolloutBuffer(trajs).to_batch()
    with torch.no_grad():
        lp = token_logprobs(model(input_ids=batch.input_ids).logits, batch.input_ids)
    return (lp * batch.loss_mask).sum(1)


def test_registry():
    assert set(ALGORITHMS) >= {"loop", "rloo", "grpo", "ppo"}
    assert [ALGORITHMS[n].needs_critic for n in ("loop", "rloo", "grpo", "ppo")] == [False, False, False, True]
    with pytest.raises(ValueError, match="unknown algorithm"):
        make_algorithm(AlgorithmConfig(name="dqn"))


def test_loop_drops_zero_advantage_groups_and_broadcasts():
    trajs = [Trajectory("a", 0, [5] * 4, [0, 1, 1, 0], [0.0] * 4, [-1, 0, 0, -1], reward=r) for r in (1.0, 0.0, 0.0, 0.0)]
    trajs += [Trajectory("b", 1, [5] * 4, [0, 1, 1, 0], [0.0] * 4, [-1, 0, 0, -1], reward=1.0) for _ in range(2)]
    batch = make_algorithm(AlgorithmConfig(name="loop")).compute_advantages(RolloutBuffer(trajs).to_batch())
    assert len(batch) == 4  # group b: all equal rewards, |A| = 0 < threshold, dropped
    assert torch.allclose(batch.advantages[0], torch.tensor([0.0, 1.0, 1.0, 0.0]))
    assert torch.allclose(batch.advantages[1], torch.tensor([0.0, -1 / 3, -1 / 3, 0.0]))


def test_loop_loss_at_ratio_one_is_minus_mean_advantage():
    algo = make_algorithm(AlgorithmConfig(name="loop"))
    trajs = [Trajectory("a", 0, [5] * 4, [0, 1, 1, 0], [-1.0] * 4, [-1, 0, 0, -1], reward=r) for r in (1.0, 0.0)]
    batch = algo.compute_advantages(RolloutBuffer(trajs).to_batch())
    from idagym.algorithms.base import ModelOutputs

    out = ModelOutputs(logprobs=batch.old_logprobs.clone().requires_grad_(), entropy=torch.zeros(2, 4))
    loss, metrics = algo.loss(out, batch)
    assert loss.item() == pytest.approx(0.0)  # advantages +1 and -1 over equally many tokens
    loss.backward()
    assert (out.logprobs.grad[0, 1:3] < 0).all() and (out.logprobs.grad[1, 1:3] > 0).all()  # descent raises A>0
    assert metrics["clip_frac"] == 0.0


@pytest.mark.parametrize("algo", ["loop", "rloo", "grpo", "ppo"])
def test_update_moves_probability_towards_rewarded_trajectories(algo):
    trainer = make_trainer(algo)
    trajs = scored_trajectories(trainer.model, [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0], [0, 0, 0, 0, 1, 1, 1, 1])
    before = seq_logp(trainer.model, trajs)
    metrics = trainer.update(trajs)
    delta = seq_logp(trainer.model, trajs) - before
    assert metrics["steps"] > 0 and metrics["approx_kl"] >= 0 and metrics["grad_norm"] > 0
    assert delta[0] > 0 and delta[5:].mean() > 0  # rewarded
    assert delta[1:4].mean() < 0 and delta[4] < 0  # unrewarded
    if algo == "ppo":
        assert "explained_variance" in metrics and metrics["value_loss"] > 0


@pytest.mark.parametrize("algo", ["loop", "grpo", "rloo"])
def test_no_step_when_every_advantage_is_zero(algo):
    trainer = make_trainer(algo)
    trajs = scored_trajectories(trainer.model, [1.0] * 4 + [0.0] * 4, [0] * 4 + [1] * 4)
    weights = copy.deepcopy(trainer.model.state_dict())
    metrics = trainer.update(trajs)
    assert metrics["steps"] == 0
    assert all(torch.equal(weights[k], v) for k, v in trainer.model.state_dict().items())
    assert not trainer.optimizer.state  # Adam never stepped (its moments would move weights later)


@pytest.mark.parametrize("level", ["turn", "trajectory"])
def test_ratio_levels_train(level):
    trainer = make_trainer("loop", **{"algorithm.ratio_level": level})
    trajs = scored_trajectories(trainer.model, [1.0, 0.0, 0.0, 0.0], [0, 0, 0, 0])
    before = seq_logp(trainer.model, trajs)
    trainer.update(trajs)
    assert (seq_logp(trainer.model, trajs) - before)[0] > 0


def test_grpo_kl_reference_is_the_base_model_with_lora():
    trainer = make_trainer("grpo", lora=True, **{"algorithm.kl_coef": 0.1})
    assert trainer.reference is None  # no second copy: the adapter is switched off instead
    trajs = scored_trajectories(trainer.model, [1.0, 0.0, 0.0, 0.0], [0, 0, 0, 0])
    batch = trainer._prepare(RolloutBuffer(trajs).to_batch())
    mask = batch.loss_mask > 0
    assert torch.allclose(batch.ref_logprobs[mask], batch.old_logprobs[mask], atol=1e-5)  # LoRA B = 0 at init
    metrics = trainer.update(trajs)
    assert metrics["steps"] > 0 and "kl_ref" in metrics
    after = trainer._prepare(RolloutBuffer(trajs).to_batch())
    assert torch.allclose(after.ref_logprobs, batch.ref_logprobs, atol=1e-6)  # reference did not move
    assert not torch.allclose(seq_logp(trainer.model, trajs), (batch.old_logprobs * batch.loss_mask).sum(1), atol=1e-4)


def test_trainer_scores_match_behaviour_logprobs_of_the_real_policy():
    cfg = load_config("examples/configs/lookup_loop.yaml", ["train.progress=false", "collector.num_envs=16"])
    trainer, collector = build(cfg, log=lambda s: None)
    try:
        trajs = collector.collect(trainer.train_tasks[:2], 8, seed=3)
    finally:
        collector.close()
    batch = RolloutBuffer(trajs).to_batch(trainer.pad_token_id)
    with torch.no_grad():
        out = trainer.forward(batch)
    mask = batch.loss_mask > 0
    assert mask.sum() > 16
    assert (out.logprobs[mask] - batch.old_logprobs[mask]).abs().max() < 1e-4


def test_kl_threshold_stops_the_iteration_early():
    trainer = make_trainer("loop", **{"train.kl_threshold": 0.0})
    trajs = scored_trajectories(trainer.model, [1.0, 0.0, 0.0, 0.0] * 2, [0, 0, 0, 0, 1, 1, 1, 1])
    metrics = trainer.update(trajs)  # 2 epochs x 2 minibatches planned
    # KL is measured in each step's forward: 0 before the first step, > 0 at the second, which stops
    assert metrics["steps"] == 2 and metrics["kl_early_stop"] == 1


def test_offpolicy_mismatch_is_measured_and_truncated_importance_weights_correct_it():
    from idagym.algorithms import functional as F

    trainer_lp = torch.tensor([[0.0, -1.0, -2.0, -0.5]])
    behaviour = torch.tensor([[0.0, -1.5, -0.8, -0.5]])  # ratios e^0.5 and e^-1.2 on the generated tokens
    mask = torch.tensor([[0.0, 1.0, 1.0, 1.0]])
    measured = F.logprob_mismatch(trainer_lp, behaviour, mask)
    assert measured["logp_mismatch_mean"] == pytest.approx(1.7 / 3) and measured["logp_mismatch_max"] == pytest.approx(1.2)
    assert measured["logp_mismatch_ratio_out"] == pytest.approx(1 / 3)  # only e^-1.2 = 0.30 lies outside [0.5, 2]
    weights = F.truncated_importance_weights(trainer_lp, behaviour, mask, cap=1.5)
    assert torch.allclose(weights, torch.tensor([[0.0, 1.5, torch.exp(torch.tensor(-1.2)).item(), 1.0]]))

    # in the trainer: behaviour log-probs 0.3 below the model's on every generated token (a sampler
    # with other numerics); the update reports it, and with a cap the ratio starts at 1 again
    for cap, clip_frac in ((None, 1.0), (2.0, 0.0)):
        trainer = make_trainer("loop", **({"algorithm.tis_cap": cap} if cap else {}), **{"train.epochs": 1, "algorithm.clip_eps": 0.2})
        trainer.samples_elsewhere = True
        trajs = scored_trajectories(trainer.model, [1.0, 0.0, 0.0, 1.0], [0, 0, 1, 1])
        for t in trajs:
            t.logprobs = [lp - 0.3 if m else lp for lp, m in zip(t.logprobs, t.loss_mask, strict=True)]
        metrics = trainer.update(trajs)
        assert metrics["logp_mismatch_mean"] == pytest.approx(0.3, abs=1e-4)
        assert metrics["logp_mismatch_max"] == pytest.approx(0.3, abs=1e-4) and metrics["logp_mismatch_ratio_out"] == 0.0
        assert metrics["clip_frac"] == pytest.approx(clip_frac)  # e^0.3 = 1.35 is outside [0.8, 1.2] uncorrected


@pytest.mark.parametrize("order", ["random", "epochs"])
def test_iteration_tasks_are_reproducible_and_epochs_cover_every_task_once_per_pass(order):
    trainer = make_trainer("sft", **{"train.task_order": order, "train.tasks_per_iteration": 3})
    trainer.train_tasks = [f"t{i}" for i in range(7)]
    drawn = [trainer._iteration_tasks(it) for it in range(14)]  # 42 draws: six passes over 7 tasks
    assert drawn == [trainer._iteration_tasks(it) for it in range(14)]  # a resumed run draws the same
    assert all(len(tasks) == 3 for tasks in drawn)
    flat = [t for tasks in drawn for t in tasks]
    passes = [sorted(flat[i : i + 7]) for i in range(0, 42, 7)]
    if order == "epochs":
        assert all(p == sorted(trainer.train_tasks) for p in passes)
        assert len({tuple(flat[i : i + 7]) for i in range(0, 42, 7)}) > 1  # each pass in a new order
    else:  # independent draws: some pass misses a task
        assert any(p != sorted(trainer.train_tasks) for p in passes)
