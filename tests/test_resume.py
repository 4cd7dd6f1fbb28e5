"""Kill a real training run with SIGKILL at an arbitrary moment and resume it: every iteration is
recorded exactly once, and the resumed run ends where an uninterrupted one does."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

CONFIG = Path(__file__).parent.parent / "examples" / "configs" / "lookup_loop.yaml"
ITERATIONS = 14
ARGS = [f"train.iterations={ITERATIONS}", "train.eval_every=5", "train.eval_episodes_per_task=4", "train.progress=false"]


def train(run_dir: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "idagym.cli", "train", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def kill_after(proc: subprocess.Popen, metrics: Path, lines: int, rng: random.Random) -> None:
    """SIGKILL once `lines` iterations are logged, plus a random delay (mid-collection, mid-update,
    mid-checkpoint: wherever it lands)."""
    deadline = time.time() + 300
    while len(rows(metrics)) < lines:
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline, "run made no progress"
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 0.6))
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_sigkill_and_resume(tmp_path):
    rng = random.Random(0)
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    proc = train(killed, str(CONFIG), f"train.run_dir={killed}", *ARGS)
    kill_after(proc, killed / "metrics.jsonl", 3, rng)
    proc = train(killed, "--resume", str(killed))
    kill_after(proc, killed / "metrics.jsonl", 8, rng)
    torch.load(killed / "checkpoint.pt", weights_only=False)  # never half-written
    proc = train(killed, "--resume", str(killed))
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out

    metrics = rows(killed / "metrics.jsonl")
    assert [r["iteration"] for r in metrics] == list(range(ITERATIONS))
    evals = [(e["iteration"], e["phase"]) for e in rows(killed / "eval.jsonl")]
    assert evals == [(0, "before"), (5, "during"), (10, "during"), (ITERATIONS, "after")]
    its = [json.loads(line)["info"]["iteration"] for line in (killed / "trajectories.jsonl").read_text().splitlines()]
    assert sorted(set(its)) == list(range(ITERATIONS)) and len(its) == ITERATIONS * 64

    # per-iteration seeds + restored weights, optimiser and RNG: the same numbers as never killed
    proc = train(straight, str(CONFIG), f"train.run_dir={straight}", *ARGS)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    reference = rows(straight / "metrics.jsonl")
    assert [r["reward_mean"] for r in metrics] == [r["reward_mean"] for r in reference]
    assert rows(killed / "eval.jsonl")[-1]["success_rate"] == rows(straight / "eval.jsonl")[-1]["success_rate"]


def test_rewind_cuts_what_the_checkpoint_does_not_hold(tmp_path):
    from idagym.run import Run

    run = Run(tmp_path)
    for i in range(5):
        run.log_metrics({"iteration": i, "reward_mean": 0.1 * i, "success_rate": 0.0})
    with open(run.metrics_path, "a") as f:
        f.write('{"iteration": 5, "rew')  # torn line: killed mid-write
    for it, phase in [(0, "before"), (2, "during"), (4, "during")]:
        run.log_eval({"iteration": it, "phase": phase, "success_rate": 0.5})
    run.save_checkpoint({"next_iteration": 3})
    assert run.load_checkpoint()["next_iteration"] == 3
    run.rewind(3)
    assert [r["iteration"] for r in run.metrics()] == [0, 1, 2]
    assert [(e["iteration"], e["phase"]) for e in run.evals()] == [(0, "before"), (2, "during")]
    assert not list(tmp_path.glob(".checkpoint.pt.*"))  # no temp files left behind
    run.close()


def test_compare_plots_runs(tmp_path):
    from idagym.cli import main
    from idagym.run import Run

    for name in ("loop", "grpo"):
        run = Run(tmp_path / name)
        for i in range(3):
            run.log_metrics({"iteration": i, "algorithm": name, "reward_mean": 0.1 * i, "success_rate": 0.2 * i})
        run.close()
    out = tmp_path / "cmp.png"
    assert main(["compare", str(tmp_path / "loop"), str(tmp_path / "grpo"), "--out", str(out)]) == 0
    assert out.stat().st_size > 1000
    assert main(["compare", str(tmp_path / "nothing")]) == 2
