"""The main job's path end to end (`idagym train` with no config: warm start, then LOOP from the
warm-started adapter, SmolLM2-135M with LoRA, the built-in AppWorld tasks), shrunk to one small
iteration per stage and one evaluation task; then `--resume` on the finished job."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_main_job_warm_starts_then_runs_loop_from_the_warm_started_model(tmp_path):
    folder = tmp_path / "main"
    cmd = [sys.executable, "-m", "idagym.cli", "train", f"run_dir={folder}", "iterations=1", "tasks_per_iteration=1",
           "collector.group_size=2", "collector.num_envs=2", "eval_tasks=1", "progress=false"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    job = json.loads((folder / "main_job.json").read_text())
    assert job["max_new_tokens"] >= 200  # the longest train solution fits one turn
    warm, loop = folder / "warm_start", folder / "loop"
    assert [m["algorithm"] for m in rows(warm / "metrics.jsonl")] == ["sft"]
    assert [m["algorithm"] for m in rows(loop / "metrics.jsonl")] == ["loop"]
    assert f"name: {warm / 'model'}" in (loop / "config.yaml").read_text()  # LOOP continues the warm start
    assert (warm / "model" / "adapter_config.json").exists() and (loop / "model" / "adapter_config.json").exists()
    warm_evals, loop_evals = rows(warm / "eval.jsonl"), rows(loop / "eval.jsonl")
    assert [e["phase"] for e in warm_evals] == [e["phase"] for e in loop_evals] == ["before", "after"]
    # LOOP's starting point is the warm start's end: the same weights and settings, so not run twice
    assert loop_evals[0]["cached"] is True and loop_evals[0]["tgc"] == warm_evals[1]["tgc"]
    for label in ("untrained", "warm start", "loop"):
        assert f"| {label} |" in done.stdout
    assert "TGC [95% CI]" in done.stdout and (folder / "curves.png").exists()

    again = subprocess.run([sys.executable, "-m", "idagym.cli", "train", "--resume", str(folder)], cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("done before, not rerun") == 2 and "| loop |" in again.stdout
    assert len(rows(loop / "metrics.jsonl")) == 1


def test_main_job_refuses_a_bad_override_before_writing_anything(tmp_path):
    folder = tmp_path / "main"
    done = subprocess.run([sys.executable, "-m", "idagym.cli", "train", f"run_dir={folder}", "train.itrations=3"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.startswith("idagym train: error: unknown config key")
    assert not folder.exists()
