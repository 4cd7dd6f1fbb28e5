"""The runnable examples, run with small settings: a plain Gymnasium loop, vector envs, tianshou DQN,
and the custom bank env trained by the framework's own trainer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `examples.` imports

from examples import gym_loop, tianshou_dqn, vector_envs  # noqa: E402
from examples.custom_env import bank_env  # noqa: E402, F401  (registers mybank/Bank-v0)


def test_gym_loop_replays_ground_truth_on_lookup():
    results = gym_loop.run("idagym/Lookup-v0", num_tasks=3)
    assert len(results) == 3
    assert all(r["done"] and r["reward"] == 1.0 and r["success"] for r in results)


def test_gym_loop_on_appworld_solves_a_task():
    # builds the offline AppWorld task suite on first use (cached afterwards)
    results = gym_loop.run("idagym/AppWorld-v0", num_tasks=1)
    assert results[0]["done"] and results[0]["success"], results[0].get("evaluation")
    assert results[0]["reward"] == 1.0


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_vector_envs_return_fresh_text_per_copy(mode):
    envs = vector_envs.make_vec("idagym/Lookup-v0", num_envs=3, mode=mode)
    try:
        # read-then-act needs each copy's own, current memo: stale or mixed-up strings would fail
        assert vector_envs.play(envs, episodes=12) == 1.0
        # a policy that never acts ends every episode truncated and unsuccessful
        assert vector_envs.play(envs, episodes=6, policy=lambda obs: "read") == 0.0
    finally:
        envs.close()


def test_tianshou_dqn_beats_random_on_lookup():
    algorithm = tianshou_dqn.train("idagym/Lookup-v0", epochs=2, steps_per_epoch=1000, seed=0)
    trained = tianshou_dqn.greedy_return(algorithm, "idagym/Lookup-v0", episodes=200, seed=1)
    random = tianshou_dqn.random_return("idagym/Lookup-v0", episodes=200, seed=1)
    # random play: about 0.06 (it must read first, then pick 1 of 4 names within 3 turns)
    assert random < 0.2
    assert trained > random + 0.6, (trained, random)


@pytest.mark.slow
def test_tianshou_dqn_beats_random_on_the_bank():
    algorithm = tianshou_dqn.train("mybank/Bank-v0", epochs=4, steps_per_epoch=1500, seed=0)
    trained = tianshou_dqn.greedy_return(algorithm, "mybank/Bank-v0", episodes=200, seed=1)
    random = tianshou_dqn.random_return("mybank/Bank-v0", episodes=200, seed=1)
    assert trained > random + 0.6, (trained, random)


@pytest.mark.slow
def test_bank_trains_and_evaluates_through_the_cli(tmp_path):
    # what the README tells a user to run, from the repository root
    run_dir, report = tmp_path / "bank", tmp_path / "report.json"
    env_id = "examples.custom_env.bank_env:mybank/Bank-v0"
    idagym = [sys.executable, "-m", "idagym.cli"]
    subprocess.run([*idagym, "train", "examples/custom_env/bank_loop.yaml", f"env={env_id}",
                    f"run_dir={run_dir}", "eval_every=0", "progress=false"], cwd=ROOT, check=True, timeout=600)
    evals = [json.loads(line) for line in (run_dir / "eval.jsonl").read_text().splitlines()]
    before, after = evals[0]["success_rate"], evals[-1]["success_rate"]
    assert before < 0.1 and after >= 0.8, (before, after)
    subprocess.run([*idagym, "eval", "--env", env_id, "--agent", str(run_dir / "model"), "--split", "dev",
                    "--temperature", "1", "--max-new-tokens", "2", "--out", str(report), "--no-progress"], cwd=ROOT, check=True, timeout=300)
    assert json.loads(report.read_text())["tgc"] >= 0.5
