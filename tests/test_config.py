"""Config loading: defaults <- YAML <- overrides, and one-line errors (exit 2, no traceback)."""

from pathlib import Path

import pytest
import torch

from idagym.cli import main
from idagym.config import Config, ConfigError, load_config, to_yaml

CONFIGS = sorted(Path(__file__).parent.parent.joinpath("examples", "configs").glob("*.yaml"))


def test_defaults_are_the_main_job():
    cfg = load_config()
    assert isinstance(cfg, Config)
    assert (cfg.algorithm.name, cfg.model.name, cfg.model.lora, cfg.train.env) == ("loop", "smollm2-135m", True, "idagym/AppWorld-v0")


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("algorithm: {name: grpo, kl_coef: 0.05}\ntrain: {iterations: 7, lr: 0.001}\n")
    cfg = load_config(path, ["train.iterations=9", "collector.group_size=3"])
    assert (cfg.algorithm.name, cfg.algorithm.kl_coef, cfg.train.lr) == ("grpo", 0.05, 0.001)
    assert (cfg.train.iterations, cfg.collector.group_size) == (9, 3)  # overrides win over the file
    again = tmp_path / "again.yaml"
    again.write_text(to_yaml(cfg))
    assert load_config(again) == cfg  # the run folder's config.yaml round-trips


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_example_configs_load(path):
    if "device: cuda" in path.read_text() and not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):  # a GPU config refuses a CPU machine
            load_config(path)
        load_config(path, ["train.device=cpu"])  # and is valid otherwise
    else:
        load_config(path)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.itrations=5"], "unknown config key 'train.itrations'"),
        (["model.lora=maybe"], "bad value for model.lora"),
        (["train.iterations=many"], "bad value for train.iterations"),
        (["algorithm.name=dqn"], "algorithm.name='dqn' is not one of"),
        (["algorithm.ratio_level=word"], "algorithm.ratio_level='word'"),
        (["train.lr=0"], "train.lr must be > 0"),
        (["train.env=idagym/Nope-v0"], "not a registered environment"),
        (["iterations"], "not key=value"),
        (["train.sharding=zero3"], "train.sharding='zero3' is not one of none, fsdp2"),
        (["train.sharding=fsdp2", "policy.backend=vllm"], "train.sharding=fsdp2 with policy.backend=vllm"),
    ],
)
def test_bad_config_is_one_line_error(overrides, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_config(None, overrides)
    assert "\n" not in str(err.value)


def test_unknown_key_in_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  iterations: 3\n  warmup: 4\n")
    with pytest.raises(ConfigError, match="unknown config key 'train.warmup'"):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_cli_prints_the_error_and_exits_2(capsys):
    assert main(["train", "train.itrations=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("idagym train: error: unknown config key") and err.count("\n") == 1
    assert "Traceback" not in err


def test_train_keys_have_a_shorthand_and_module_env_ids_import(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent.parent))
    cfg = load_config(None, ["env=examples.custom_env.bank_env:mybank/Bank-v0", "iterations=3"])
    assert (cfg.train.env, cfg.train.iterations) == ("examples.custom_env.bank_env:mybank/Bank-v0", 3)
    with pytest.raises(ConfigError, match="cannot import 'no_such_module'"):
        load_config(None, ["env=no_such_module:x/Y-v0"])
    with pytest.raises(ConfigError, match="not a registered environment"):
        load_config(None, ["env=nobody/Nothing-v0"])


def test_top_p_below_one_is_refused_for_training():
    with pytest.raises(ConfigError, match=r"policy.top_p=0.9 cannot be trained with"):
        load_config(None, ["policy.top_p=0.9"])
