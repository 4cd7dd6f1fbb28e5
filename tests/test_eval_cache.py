"""Evaluations are measured on the same episodes every time, and one of the same weights with the
same settings is reused from the cache instead of run again; other weights or settings miss it."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from idagym.algorithms.trainer import build
from idagym.config import load_config
from idagym.evaluation import EvalCache, model_fingerprint

CONFIG = Path(__file__).parent.parent / "examples" / "configs" / "lookup_sft.yaml"


def _trainer(overrides: list[str]):
    cfg = load_config(CONFIG, ["train.progress=false", "train.eval_episodes_per_task=4", *overrides])
    return build(cfg, log=lambda line: None)


def test_same_weights_and_settings_reuse_the_evaluation(tmp_path, monkeypatch):
    monkeypatch.setenv("IDAGYM_CACHE", str(tmp_path))
    trainer, collector = _trainer(["train.eval_cache=true"])
    try:
        first = trainer.evaluate(0, "before")
        again = trainer.evaluate(5, "during")  # another point of the run, the same weights: reused
        assert "cached" not in first and again["cached"] is True
        assert {k: again[k] for k in first if k not in ("iteration", "phase")} == {
            k: first[k] for k in first if k not in ("iteration", "phase")}
        assert first["episodes"] == 32 and {"tgc", "tgc_ci95", "sgc", "sgc_ci95", "scenarios"} <= first.keys()
        assert len(list((tmp_path / "evals").glob("*.json"))) == 1

        with torch.no_grad():  # other weights: measured anew
            next(trainer.model.parameters()).add_(0.5)
        changed = trainer.evaluate(6, "during")
        assert "cached" not in changed
        trainer.cfg.policy.temperature = 0.7  # other settings: measured anew
        assert "cached" not in trainer.evaluate(7, "during")
        assert len(list((tmp_path / "evals").glob("*.json"))) == 3
    finally:
        collector.close()


def test_without_the_cache_every_evaluation_replays_the_same_episodes(tmp_path, monkeypatch):
    monkeypatch.setenv("IDAGYM_CACHE", str(tmp_path))
    trainer, collector = _trainer([])
    try:
        first, second = trainer.evaluate(0, "before"), trainer.evaluate(3, "during")
    finally:
        collector.close()
    assert "cached" not in second and not (tmp_path / "evals").exists()
    assert second["success_rate"] == first["success_rate"]  # same weights, same seeds: same episodes


def test_fingerprint_follows_the_weights_and_a_torn_entry_is_a_miss(tmp_path):
    model = torch.nn.Linear(3, 2)
    same = torch.nn.Linear(3, 2)
    same.load_state_dict(model.state_dict())
    assert model_fingerprint(model.state_dict()) == model_fingerprint(same.state_dict())
    with torch.no_grad():
        same.bias[0] += 1e-6
    assert model_fingerprint(model.state_dict()) != model_fingerprint(same.state_dict())
    cache = EvalCache(tmp_path)
    key = cache.key(model="m", seed=1)
    assert cache.get(key) is None
    cache.put(key, {"tgc": 0.5})
    assert cache.get(key) == {"tgc": 0.5} and cache.key(model="m", seed=2) != key
    (tmp_path / f"{key}.json").write_text('{"tgc": 0.')  # torn by a crash
    assert cache.get(key) is None



def test_a_code_change_misses_the_cache(tmp_path, monkeypatch):
    import idagym
    from idagym import evaluation

    key = EvalCache.key(model="m", seed=1)
    original = evaluation.code_fingerprint()
    # the same package in another folder hashes the same; with one line of env.py changed it does not
    copy = tmp_path / "idagym"
    shutil.copytree(Path(idagym.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(idagym, "__file__", str(copy / "__init__.py"))
    evaluation.code_fingerprint.cache_clear()
    assert evaluation.code_fingerprint() == original
    env_py = copy / "appworld" / "env.py"
    env_py.write_text(env_py.read_text() + "\n# changed\n")
    evaluation.code_fingerprint.cache_clear()
    assert evaluation.code_fingerprint() != original and EvalCache.key(model="m", seed=1) != key
    monkeypatch.undo()
    evaluation.code_fingerprint.cache_clear()
    assert EvalCache.key(model="m", seed=1) == key
