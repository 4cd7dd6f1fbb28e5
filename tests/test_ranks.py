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


@pytest.mark.parametrize(("mode", "sharding"), [("mixed", "none"), ("idle", "none"), ("mixed", "fsdp2"), ("idle", "fsdp2"),
                                              ("lora", "fsdp2"), ("checkpointed", "fsdp2"), ("ppo", "none"),
                                              ("ppo", "fsdp2")])
def test_two_ranks_with_half_the_batch_each_make_the_update_of_one_rank_with_all_of_it(tmp_path, mode, sharding):
    # mixed: the ranks' trajectories generate different numbers of tokens; idle: one rank has nothing to learn;
    # lora: SmolLM2-135M with an adapter; checkpointed: activations recomputed in the backward pass;
    # ppo: the policy and its value head (both sharded with fsdp2), then a checkpoint round trip.
    # fsdp2: the two ranks hold the weights sharded (the script checks it)
    script = str(ROOT / "tests" / "scripts" / "one_update.py")
    subprocess.run([sys.executable, script, str(tmp_path / "one.pt"), mode], check=True, env=ENV, timeout=300)
    subprocess.run([*LAUNCH, "--num_processes", "2", script, str(tmp_path / "two.pt"), mode, sharding], check=True, env=ENV,
                   timeout=300)
    one, two = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    assert one["grads"].keys() == two["grads"].keys()
    # a real step (LoRA's A matrices get no gradient on the first step: B starts at zero)
    learned = [n for n in one["grads"] if "lora_A" not in n]
    assert sum(bool(one["grads"][n].abs().sum() > 0) for n in learned) > len(learned) // 2
    for name, grad in one["grads"].items():
        torch.testing.assert_close(two["grads"][name], grad, rtol=1e-4, atol=1e-6)  # the mean of the ranks' grads
        # Adam's first step is lr * g / (|g| + eps): where |g| is near eps (1e-8), fp noise in g decides the step
        clear = grad.abs() > 1e-6
        torch.testing.assert_close(two["weights"][name][clear], one["weights"][name][clear], rtol=1e-4, atol=1e-5)


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
@pytest.mark.parametrize("sharding", ["none", "fsdp2"])
def test_two_ranks_learn_lookup(tmp_path, sharding):
    run = tmp_path / "run"
    proc = subprocess.run([*IDAGYM, "train", "--num-processes", "2", "examples/configs/lookup_loop.yaml",
                           f"run_dir={run}", "eval_every=0", f"train.sharding={sharding}"], cwd=ROOT, capture_output=True,
                          text=True, env=ENV, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    evals = [json.loads(line) for line in (run / "eval.jsonl").read_text().splitlines()]
    before, after = evals[0], evals[-1]
    assert before["episodes"] == after["episodes"] == 128
    assert before["success_rate"] < 0.2 and after["success_rate"] >= 0.8, (before["success_rate"], after["success_rate"])
    rows = metrics(run)
    assert [r["iteration"] for r in rows] == list(range(200)) and all(r["trajectories"] == 64 for r in rows)


# fsdp2: LoRA on SmolLM2-135M (an adapter sharded, saved and restored), fitted to Lookup's solutions (every
# iteration steps); short actions
SHARDED_LORA = ["train.sharding=fsdp2", "model.name=smollm2-135m", "model.lora=true", "algorithm.name=sft", "policy.max_new_tokens=4",
                "collector.group_size=2", "train.tasks_per_iteration=2", "train.minibatch_size=4", "train.eval_tasks=2",
                "train.eval_episodes_per_task=2", "iterations=8"]


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["ddp", "fsdp2-lora"])
def test_a_killed_rank_fails_the_run_in_bounded_time_and_resume_finishes_it(tmp_path, variant):
    run = tmp_path / "run"
    total = 30 if variant == "ddp" else 8
    args = ["examples/configs/lookup_loop.yaml", f"run_dir={run}", "iterations=30", "eval_every=0", "eval_before=false",
            *(SHARDED_LORA if variant == "fsdp2-lora" else [])]
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
    assert done < total
    resumed = subprocess.run([*IDAGYM, "train", "--num-processes", "2", "--resume", str(run)], cwd=ROOT, env=ENV,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [r["iteration"] for r in metrics(run)] == list(range(total))  # nothing missing or repeated
    assert (run / "model").is_dir()
    if variant == "fsdp2-lora":  # the whole adapter, gathered from the shards
        from safetensors.torch import load_file

        adapter = load_file(run / "model" / "adapter_model.safetensors")
        trained = torch.load(run / "checkpoint.pt", weights_only=False)["trainable"]
        assert len(adapter) == len(trained) == 420
        for name, weight in adapter.items():  # as trained, and B moved from its zero start
            assert torch.equal(weight, trained[name.replace(".weight", ".default.weight")]), name
        assert all(w.abs().sum() > 0 for n, w in adapter.items() if "lora_B" in n)


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


def test_accelerates_own_fsdp_settings_are_refused_with_one_line(monkeypatch):
    from idagym.algorithms.ranks import Ranks

    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")  # what `accelerate launch` sets for distributed_type: FSDP
    with pytest.raises(ValueError, match="launch with examples/accelerate/ddp.yaml and set train.sharding=fsdp2") as err:
        Ranks(torch.device("cpu"), "fsdp2")
    assert "\n" not in str(err.value)
