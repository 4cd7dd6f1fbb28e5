"""Learning, for real: on the Lookup world each algorithm takes a random tiny model from near-zero
success to >= 0.8, measured at the end on 256 fresh episodes, on at least 2 of 3 fixed seeds.

Each run uses its algorithm's example config (examples/configs/lookup_<algo>.yaml) unchanged, so
these settings are the ones documented for users.
"""

import time
from pathlib import Path

import pytest
import torch

from idagym.algorithms.trainer import build
from idagym.config import load_config

CONFIGS = Path(__file__).parent.parent / "examples" / "configs"
SEEDS = (0, 1, 2)
CPU_SECONDS = 120  # per run, on one core (CPU time, so other work on the machine does not count)


def learn(algo: str, seed: int) -> tuple[float, float, float]:
    """(success before, success after, CPU seconds) of one run; success on 8 tasks x 32 episodes."""
    torch.set_num_threads(1)
    cfg = load_config(CONFIGS / f"lookup_{algo}.yaml", [f"train.seed={seed}", f"model.seed={seed}", "train.progress=false",
                                                        "train.eval_every=0", "train.eval_episodes_per_task=32"])
    t0 = time.process_time()
    trainer, collector = build(cfg, log=lambda line: None)
    try:
        result = trainer.train()
    finally:
        collector.close()
    assert result["before"]["episodes"] == result["after"]["episodes"] == 256
    return result["before"]["success_rate"], result["after"]["success_rate"], time.process_time() - t0


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["loop", "grpo", "rloo", "ppo"])
def test_success_rises_from_chance(algo):
    results = []
    for seed in SEEDS:
        before, after, cpu = learn(algo, seed)
        results.append((seed, before, after, round(cpu)))
        print(f"{algo} seed {seed}: success {before:.3f} -> {after:.3f} in {cpu:.0f} CPU s")
        assert before <= 0.1, f"{algo} seed {seed} starts at {before}, not near chance"
        assert cpu < CPU_SECONDS, f"{algo} seed {seed} took {cpu:.0f} CPU s"
        passed = sum(after >= 0.8 for _, _, after, _ in results)
        if passed >= 2:  # the third seed cannot change the verdict
            break
    assert sum(after >= 0.8 for _, _, after, _ in results) >= 2, f"{algo}: (seed, before, after, cpu s) = {results}"
