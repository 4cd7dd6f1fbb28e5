"""A shrunk warm start, really trained on the real AppWorld engine: SmolLM2-135M with LoRA imitates
the solutions of three training tasks and then solves them, where the untrained model solves none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from idagym.algorithms.trainer import build
from idagym.appworld.tasks import ground_truth_code
from idagym.config import load_config


def shortest_tasks(root: str, train_tasks: list[str], n: int) -> list[str]:
    """The task with the shortest solution of each of the `n` templates whose solutions are shortest."""
    infos = json.loads(Path(root, "data", "suite.json").read_text())["tasks"]
    best: dict[str, tuple[int, str]] = {}
    for t in train_tasks:
        size = len(ground_truth_code(t, root=Path(root)))
        best[infos[t]["template"]] = min(best.get(infos[t]["template"], (size, t)), (size, t))
    return [t for _, t in sorted(best.values())[:n]]


@pytest.mark.slow
def test_warm_start_solves_its_tasks(root: str):
    cfg = load_config(None, [
        "model.name=smollm2-135m", "model.lora=true", "algorithm.name=sft",
        "policy.temperature=0.3", "policy.max_new_tokens=320", "policy.max_context_tokens=4096",
        "collector.num_envs=3", "collector.env_kwargs.max_turns=2", "collector.progress=false",
        "train.iterations=24", "train.tasks_per_iteration=3", "train.minibatch_size=3", "train.lr=1e-3",
        "train.eval_split=train", "train.eval_tasks=0", "train.progress=false",
    ])
    trainer, collector = build(cfg, log=print)
    try:
        tasks = shortest_tasks(root, trainer.train_tasks, 3)
        trainer.train_tasks = trainer.eval_tasks = tasks
        result = trainer.train()
    finally:
        collector.close()
    before, after = result["before"]["success_rate"], result["after"]["success_rate"]
    print(f"warm start on {tasks}: TGC {before:.2f} -> {after:.2f}")
    assert after > before, result
