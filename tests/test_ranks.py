"""Data-parallel ranks on the CPU (gloo): averaging is exact, two ranks learn, a killed rank fails
the run in bounded time with one line, and --resume finishes it."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no"]
IDAGYM = [sys.executable, "-m", "idagym.cli"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "IDAGYM_COLLECTIVE_TIMEOUT_S": "60"}


@pytest.mark.parametrize("mode", ["mixed", "idle"])
def test_two_ranks_with_half_the_batch_each_make_the_update_of_one_rank_with_all_of_it(tmp_path, mode):
    # mixed: the ranks' trajectories generate different numbers of tokens; idle: one rank has nothing to learn
    script = str(ROOT / "tests" / "scripts" / "one_update.py")
    subprocess.run([sys.executable, script, str(tmp_path / "one.pt"), mode], check=True, env=ENV, timeout=300)
    subprocess.run([*LAUNCH, "--num_processes", "2", script, str(tmp_path / "two.pt"), mode], check=True, env=ENV, timeout=300)
    one, two = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    assert one["grads"].keys() == two["grads"].keys()
    assert sum(bool(g.abs().sum() > 0) for g in one["grads"].values()) > len(one["grads"]) // 2  # a real step
    for name, grad in one["grads"].items():
        torch.testing.assert_close(two["grads"][name], grad, rtol=1e-4, atol=1e-6)  # the mean of the ranks' grads
        # Adam's first step is about lr * sign(grad): fp noise on a near-zero grad moves a weight by ~1e-6
        torch.testing.assert_close(two["weights"][name], one["weights"][name], rtol=1e-4, atol=1e-5)


def test_a_world_size_that_does_not_divide_the_tasks_is_refused_before_launching(tmp_path):
    proc = subprocess.run([*IDAGYM, "train", "--num-processes", "3", "examples/configs/lookup_loop.yaml",
                           f"run_dir={tmp_path / 'r'}"], cwd=ROOT, capture_output=True, text=True, env=ENV, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("idagym train: error: train.tasks_per_iteration=8 is not divisible by the 3 "
                                   "processes: make it a multiple of 3")


def metrics(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
def test_two_ranks_learn_lookup(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.run([*IDAGYM, "train", "--num-processes", "2", "examples/configs/lookup_loop.yaml",
                           f"run_dir={run}", "eval_every=0"], cwd=ROOT, capture_output=True, text=True, env=ENV, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    evals = [json.loads(line) for line in (run / "eval.jsonl").read_text().splitlines()]
    before, after = evals[0], evals[-1]
    assert before["episodes"] == after["episodes"] == 128
    assert before["success_rate"] < 0.2 and after["success_rate"] >= 0.8, (before["success_rate"], after["success_rate"])
    rows = metrics(run)
    assert [r["iteration"] for r in rows] == list(range(200)) and all(r["trajectories"] == 64 for r in rows)


@pytest.mark.slow
def test_a_killed_rank_fails_the_run_in_bounded_time_and_resume_finishes_it(tmp_path):
    run = tmp_path / "run"
    args = ["examples/configs/lookup_loop.yaml", f"run_dir={run}", "iterations=30", "eval_every=0", "eval_before=false"]
    parent = subprocess.Popen([*IDAGYM, "train", "--num-processes", "2", *args], cwd=ROOT, env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while len(metrics(run)) < 3 and time.time() < deadline and parent.poll() is None:
        time.sleep(0.2)
    assert len(metrics(run)) >= 3, "the run did not start"
    ranks = [p for p in psutil.Process(parent.pid).children(recursive=True) if "idagym.cli" in " ".join(p.cmdline())]
    victim = max(ranks, key=lambda p: p.pid)
    t_kill = time.time()
    os.kill(victim.pid, signal.SIGKILL)
    _, stderr = parent.communicate(timeout=120)
    assert time.time() - t_kill < 120 and parent.returncode == 1
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("idagym train: error: a rank failed") and f"--resume {run}" in last
    done = len(metrics(run))
    assert done < 30
    resumed = subprocess.run([*IDAGYM, "train", "--num-processes", "2", "--resume", str(run)], cwd=ROOT, env=ENV,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [r["iteration"] for r in metrics(run)] == list(range(30))  # nothing missing or repeated
    assert (run / "model").is_dir()


def test_the_ddp_example_config_launches_two_ranks(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--config_file", "examples/accelerate/ddp.yaml",
                           "--num_processes", "2", "-m", "idagym.cli", "train", "examples/configs/lookup_loop.yaml",
                           f"train.run_dir={run}", "iterations=2", "eval_every=0", "eval_before=false", "train.device=cpu"],
                          cwd=ROOT, capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 ranks" in proc.stdout
    assert [r["trajectories"] for r in metrics(run)] == [64, 64]


def test_a_run_folder_is_never_overwritten_and_resumes_only_with_its_number_of_processes(tmp_path):
    run = tmp_path / "run"
    one = ["examples/configs/lookup_loop.yaml", f"run_dir={run}", "iterations=1", "eval_every=0", "eval_before=false"]
    subprocess.run([*IDAGYM, "train", *one], cwd=ROOT, check=True, env=ENV, capture_output=True, timeout=300)
    assert len(metrics(run)) == 1
    ranks = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--config_file", "examples/accelerate/ddp.yaml",
                            "--num_processes", "2", "-m", "idagym.cli", "train", "examples/configs/lookup_loop.yaml",
                            f"train.run_dir={run}", "train.device=cpu"], cwd=ROOT, capture_output=True, text=True, env=ENV, timeout=300)
    assert ranks.returncode != 0 and f"{run} already holds a run: continue it with --resume {run}" in ranks.stderr
    assert len(metrics(run)) == 1 and (run / "checkpoint.pt").exists()  # nothing rewound
    resumed = subprocess.run([*IDAGYM, "train", "--num-processes", "2", "--resume", str(run)], cwd=ROOT,
                             capture_output=True, text=True, env=ENV, timeout=300)
    assert resumed.returncode == 2
    assert resumed.stderr.strip() == ("idagym train: error: this run was trained with 1 process(es): resume it with "
                                      "--num-processes 1, not 2")
    zero = subprocess.run([*IDAGYM, "train", "--num-processes", "0", *one], cwd=ROOT, capture_output=True, text=True,
                          env=ENV, timeout=120)
    assert zero.returncode == 2 and zero.stderr.strip() == "idagym train: error: --num-processes must be at least 1, got 0"
