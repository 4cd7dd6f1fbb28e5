"""Devices and precision: every tensor follows the model's device, bf16 weights train with fp32
losses, gradient checkpointing recomputes layers without changing gradients, and bad device or
dtype settings are one-line errors."""

import os
import sys
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode

from idagym.agents.config import ModelConfig, PolicyConfig
from idagym.agents.hf_policy import TransformersPolicy
from idagym.agents.models import load_model_and_tokenizer
from idagym.algorithms.trainer import Trainer, build
from idagym.buffer import RolloutBuffer
from idagym.config import ConfigError, load_config
from idagym.devices import resolve_device

ROOT = Path(__file__).resolve().parent.parent
DEVICE = os.environ.get("IDAGYM_TEST_DEVICE", "cpu")  # benchmarks/gpu_check.sh runs these on cuda
OUR_CODE = tuple(str(ROOT / part) for part in ("idagym", "agents", "algorithms"))
FACTORIES = {torch.zeros, torch.ones, torch.full, torch.empty, torch.arange, torch.tensor, torch.as_tensor,
             torch.rand, torch.randn, torch.randint, torch.randperm, torch.linspace, torch.eye}


class DevicelessFactories(TorchFunctionMode):
    """Records each tensor factory called from idagym's own code without a `device`: such a tensor
    lands on the CPU whatever the model's device, which breaks a CUDA run."""

    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FACTORIES and "device" not in kwargs:
            caller = sys._getframe(1)
            if caller.f_code.co_filename.startswith(OUR_CODE):
                where = Path(caller.f_code.co_filename).relative_to(ROOT)
                self.calls.append(f"{func.__name__} at {where}:{caller.f_lineno}")
        return func(*args, **kwargs)


def lookup_config(*overrides):
    return load_config(ROOT / "examples/configs/lookup_loop.yaml",
                       ["train.progress=false", f"train.device={DEVICE}", "collector.num_envs=8", "train.tasks_per_iteration=2", *overrides])


@pytest.mark.parametrize("overrides", [[], ["algorithm.name=ppo"], ["algorithm.name=grpo", "algorithm.kl_coef=0.1"]],
                         ids=["loop", "ppo-critic", "grpo-reference"])
def test_collecting_and_updating_name_the_device_of_every_tensor_they_create(overrides):
    trainer, collector = build(lookup_config(*overrides), log=lambda line: None)
    try:
        with DevicelessFactories() as mode:
            trajs = collector.collect(trainer.train_tasks[:2], 8, seed=1)
            for i, traj in enumerate(trajs):  # rewards that differ within each group: every minibatch trains
                traj.reward = float(i % 2)
            metrics = trainer.update(trajs)
    finally:
        collector.close()
    assert metrics["steps"] > 0
    assert mode.calls == [], "tensors created without a device: " + "; ".join(sorted(set(mode.calls)))


def test_the_detector_sees_a_deviceless_tensor():
    from idagym.algorithms import functional

    with DevicelessFactories() as mode:
        functional.masked_mean(torch.ones(2), torch.ones(2))  # created here, in a test: not flagged
        exec(compile("torch.zeros(3)", functional.__file__, "exec"), {"torch": torch})  # as if in our code
    assert len(mode.calls) == 1 and mode.calls[0].startswith("zeros at algorithms/functional.py")


def test_bf16_weights_train_with_fp32_log_probs_and_loss():
    trainer, collector = build(lookup_config("model.dtype=bfloat16"), log=lambda line: None)
    try:
        assert next(trainer.model.parameters()).dtype == torch.bfloat16
        assert trainer.device.type == torch.device(DEVICE).type
        trajs = collector.collect(trainer.train_tasks[:2], 8, seed=5)
    finally:
        collector.close()
    assert all(isinstance(lp, float) for t in trajs for lp in t.logprobs)
    batch = RolloutBuffer(trajs).to_batch(trainer.pad_token_id)
    with torch.no_grad():
        out = trainer.forward(trainer._on_device(batch))
    assert out.logprobs.dtype == torch.float32 and out.entropy.dtype == torch.float32
    mask = batch.loss_mask > 0
    # behaviour and trainer score the same bf16 network (batching changes bf16 rounding a little)
    assert (out.logprobs.cpu()[mask] - batch.old_logprobs[mask]).abs().max() < 0.05
    for i, traj in enumerate(trajs):
        traj.reward = float(i % 2)
    before = [p.detach().clone() for p in trainer.params]
    metrics = trainer.update(trajs)
    assert metrics["steps"] > 0 and torch.isfinite(torch.tensor(metrics["loss"]))
    assert any(not torch.equal(a, p) for a, p in zip(before, trainer.params, strict=True))


def _layer_calls_and_grads(checkpointing: bool, lora: bool):
    model, _ = load_model_and_tokenizer(ModelConfig(name="tiny", seed=4, lora=lora, gradient_checkpointing=checkpointing),
                                        device=DEVICE)
    calls = []
    for module in model.modules():
        if type(module).__name__ == "Qwen2Attention":
            module.register_forward_hook(lambda *_: calls.append(1))
    ids = torch.randint(3, 250, (2, 12), generator=torch.Generator().manual_seed(0)).to(DEVICE)
    model(input_ids=ids).logits.float().logsumexp(-1).mean().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    with torch.no_grad():
        calls.clear()
        model(input_ids=ids)  # no-grad passes (generation, old log-probs) never recompute
    return len(calls), grads


@pytest.mark.parametrize("lora", [False, True])
def test_gradient_checkpointing_recomputes_layers_and_keeps_the_gradients(lora):
    layers = 2
    plain_calls, plain = _layer_calls_and_grads(False, lora)
    ckpt_calls, ckpt = _layer_calls_and_grads(True, lora)
    assert plain_calls == ckpt_calls == layers
    assert plain.keys() == ckpt.keys()
    for name in plain:
        torch.testing.assert_close(ckpt[name], plain[name], rtol=1e-5, atol=1e-6)


def test_gradient_checkpointing_runs_each_layer_twice_in_a_training_step():
    model, _ = load_model_and_tokenizer(ModelConfig(name="tiny", seed=4, gradient_checkpointing=True), device=DEVICE)
    calls = []
    for module in model.modules():
        if type(module).__name__ == "Qwen2Attention":
            module.register_forward_hook(lambda *_: calls.append(1))
    assert not any(m.training for m in model.modules() if type(m).__name__ == "Dropout")
    model(input_ids=torch.tensor([[5, 6, 7, 8]], device=DEVICE)).logits.sum().backward()
    assert len(calls) == 2 * 2  # forward, then the recompute in backward, for each of the 2 layers


def test_device_settings_are_checked_before_any_work():
    with pytest.raises(ConfigError, match="train.device='tpu' is not one of"):
        lookup_config("train.device=tpu")
    with pytest.raises(ConfigError, match="train.device='cpu:1'"):
        lookup_config("train.device=cpu:1")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device") as err:
            lookup_config("train.device=cuda")
        assert "\n" not in str(err.value)
        assert resolve_device("auto") == torch.device("cpu")
    assert lookup_config("train.device=cpu").train.device == "cpu"
    assert resolve_device("cpu") == torch.device("cpu")


def test_the_policy_and_trainer_take_the_device_of_the_model():
    # the meta device stands in for a second device: nothing can silently stay on the CPU
    policy = TransformersPolicy.from_config(ModelConfig(name="tiny"), PolicyConfig(), device="meta")
    assert {p.device.type for p in policy.model.parameters()} == {"meta"} and policy.device.type == "meta"
    cfg = lookup_config("algorithm.name=ppo")
    trainer = Trainer(cfg, policy.model, collector=None, train_tasks=["t0"])
    assert trainer.device.type == "meta" and {p.device.type for p in trainer.critic.parameters()} == {"meta"}


def test_eval_loads_a_model_in_the_dtype_it_was_trained_in(tmp_path):
    import argparse

    from idagym.agents.cli import model_dtype, trained_settings
    from idagym.agents.models import save_policy_settings

    save_policy_settings(tmp_path, {"temperature": 0.5}, "idagym/Lookup-v0", {}, dtype="bfloat16")
    saved = trained_settings(str(tmp_path))
    assert model_dtype(argparse.Namespace(dtype=None), saved) == "bfloat16"
    assert model_dtype(argparse.Namespace(dtype="float32"), saved) == "float32"  # a flag overrides
    assert model_dtype(argparse.Namespace(dtype=None), None) == "float32"
