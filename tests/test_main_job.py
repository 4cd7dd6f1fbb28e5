"""The main job's path end to end: LOOP, SmolLM2-135M with LoRA, the built-in AppWorld tasks
(the `idagym train` defaults, shrunk to one small iteration)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_default_train_runs_on_appworld_with_smollm2_lora(tmp_path):
    run_dir = tmp_path / "main"
    cmd = [sys.executable, "-m", "idagym.cli", "train", f"run_dir={run_dir}", "iterations=1", "tasks_per_iteration=1",
           "collector.group_size=2", "collector.num_envs=2", "eval_tasks=1", "policy.max_new_tokens=24", "progress=false"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"Results in {run_dir}" in done.stdout
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["iteration"] for m in metrics] == [0] and metrics[0]["algorithm"] == "loop"
    evals = [json.loads(line) for line in (run_dir / "eval.jsonl").read_text().splitlines()]
    assert [e["phase"] for e in evals] == ["before", "after"]
    trajectories = (run_dir / "trajectories.jsonl").read_text().splitlines()
    assert len(trajectories) == 2 and json.loads(trajectories[0])["task_id"]
    assert (run_dir / "model" / "adapter_config.json").exists()  # LoRA: the adapter, not a copy of the model
    assert (run_dir / "checkpoint.pt").exists() and (run_dir / "curves.png").exists()
