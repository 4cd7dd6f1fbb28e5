"""The supervised warm start: demonstrations are the policy's own tokens, come from training tasks
only, teach a tiny model Lookup, and a saved LoRA run continues training."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import torch

from idagym.agents.config import ModelConfig
from idagym.agents.models import load_model_and_tokenizer, save_model
from idagym.algorithms.trainer import build
from idagym.buffer import save_jsonl
from idagym.config import ConfigError, load_config
from idagym.demonstrations import DemonstrationError, load_demonstrations

CONFIGS = Path(__file__).parent.parent / "examples" / "configs"


def _build(config: str, overrides: list[str]):
    return build(load_config(config, ["train.progress=false", *overrides]), log=lambda line: None)


def test_demonstrations_are_the_policys_own_tokens():
    trainer, collector = _build(CONFIGS / "lookup_sft.yaml", [])
    try:
        demos = trainer.train_source.collect(["pay", "call"], 1, seed=3)
        policy = collector.policy
    finally:
        collector.close()
    assert len(demos) == 2 and all(d.success and d.reward == 1.0 for d in demos)
    for demo in demos:
        assert [t.action for t in demo.turns][0] == "read" and len(demo.turns) == 2
        trained = [i for i, m in zip(demo.input_ids, demo.loss_mask, strict=True) if m]
        assert policy.tokenizer.decode(trained).split() == [t.action for t in demo.turns]  # only the actions
        first_prompt = demo.loss_mask.index(1)
        expected = policy.start(demo.task_id, 99, demo.turns[0].observation).input_ids
        assert demo.input_ids[:first_prompt] == expected  # the same prompt and chat template as a rollout


def test_sft_teaches_lookup():
    torch.set_num_threads(1)
    trainer, collector = _build(CONFIGS / "lookup_sft.yaml", ["train.eval_episodes_per_task=32"])
    t0 = time.process_time()
    try:
        result = trainer.train()
    finally:
        collector.close()
    assert result["before"]["episodes"] == result["after"]["episodes"] == 256
    assert result["before"]["success_rate"] <= 0.1
    assert result["after"]["success_rate"] >= 0.9, result
    assert time.process_time() - t0 < 60


APPWORLD_SFT = ["model.name=tiny", "algorithm.name=sft", "policy.max_new_tokens=4096", "policy.max_context_tokens=8192",
                "collector.num_envs=2", "train.eval_split=dev"]


def test_appworld_demonstrations_come_from_training_tasks_only(root: str):
    trainer, collector = _build(None, APPWORLD_SFT)
    try:
        demos = trainer.train_source.collect(trainer.train_tasks[:3], 1, seed=0)
    finally:
        collector.close()
    assert len(demos) == 3 and all(d.success for d in demos)
    assert all(d.turns[0].response.startswith("```python\n") for d in demos)
    infos = json.loads(Path(root, "data", "suite.json").read_text())["tasks"]
    held_out = {t for t, i in infos.items() if i["split"] != "train"}
    assert held_out, "the suite has held-out tasks"
    assert not set(trainer.train_tasks) & held_out
    assert {"1e86002_1", "73470bb_3"}.isdisjoint(trainer.train_tasks)  # train tasks that repeat a dev/test task
    # no held-out parameter set is trained on: the same template never gets the same parameters
    held_params = {(infos[t]["template"], json.dumps(infos[t]["params"], sort_keys=True)) for t in held_out}
    train_params = {(infos[t]["template"], json.dumps(infos[t]["params"], sort_keys=True)) for t in trainer.train_tasks}
    assert not held_params & train_params
    # a saved demonstration file is refused if any line is of a held-out task
    path = Path(root).parent / f"demos-{os.getpid()}.jsonl"
    try:
        dev_demo = demos[0]
        dev_demo.task_id = sorted(held_out)[0]
        save_jsonl(demos[1:] + [dev_demo], path, append=False)
        with pytest.raises(DemonstrationError, match=rf"{path.name}:3: task .* is not in the training split"):
            load_demonstrations(path, vocab_size=300, task_ids=trainer.train_tasks)
    finally:
        path.unlink(missing_ok=True)


def test_bad_demonstration_files_fail_with_file_and_line(tmp_path: Path):
    good = {"task_id": "pay", "input_ids": [1, 2], "loss_mask": [0, 1], "logprobs": [0.0, 0.0], "turn_index": [-1, 0]}
    cases = {
        "not json\n": r":1: not a trajectory",
        json.dumps({**good, "colour": "red"}) + "\n": r":1: not a trajectory",
        json.dumps(good) + "\n" + json.dumps({**good, "loss_mask": [1]}) + "\n": r":2: token fields differ",
        json.dumps({**good, "input_ids": [1, 999]}) + "\n": r":1: token ids outside",
        json.dumps({**good, "loss_mask": [0, 0]}) + "\n": r":1: no token has loss mask 1",
        json.dumps({**good, "task_id": "swim"}) + "\n": r":1: task 'swim' is not in the training split",
        "\n": r"no demonstrations",
    }
    for i, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"d{i}.jsonl"
        path.write_text(text)
        with pytest.raises(DemonstrationError, match=message):
            load_demonstrations(path, vocab_size=100, task_ids=["pay", "call"])
    assert load_demonstrations(_write(tmp_path / "ok.jsonl", good), vocab_size=100, task_ids=["pay"])[0].task_id == "pay"
    with pytest.raises(DemonstrationError, match="not found"):
        load_demonstrations(tmp_path / "missing.jsonl", vocab_size=100, task_ids=["pay"])


def _write(path: Path, row: dict) -> Path:
    path.write_text(json.dumps(row) + "\n")
    return path


def test_demonstrations_are_refused_for_rl_algorithms():
    with pytest.raises(ConfigError, match="train.demonstrations is read only by algorithms that learn from demonstrations"):
        load_config(None, ["algorithm.name=loop", "train.demonstrations=x.jsonl"])


def test_a_saved_lora_run_trains_on(tmp_path: Path):
    """model.name=RUN/model with lora: the saved adapter itself is trained, not wrapped in a new one."""
    base, tokenizer = load_model_and_tokenizer(ModelConfig(name="tiny"))
    save_model(base, tokenizer, tmp_path / "base")
    model, tokenizer = load_model_and_tokenizer(ModelConfig(name=str(tmp_path / "base"), lora=True))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.fill_(0.01)  # a "trained" adapter
    save_model(model, tokenizer, tmp_path / "run-model")
    assert (tmp_path / "run-model" / "adapter_config.json").exists()
    again, _ = load_model_and_tokenizer(ModelConfig(name=str(tmp_path / "run-model"), lora=True))
    trainable = {n: p for n, p in again.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert all(torch.all(p == 0.01) for n, p in trainable.items() if "lora_B" in n)
    assert not any("base_model.model.base_model" in n for n, _ in again.named_parameters())  # not wrapped twice
