"""Structured configuration for training runs (omegaconf): defaults <- YAML file <- dot-list overrides.

`Config` composes the agents' `ModelConfig` / `PolicyConfig` / `CollectorConfig` with the
`AlgorithmConfig` and `TrainConfig` below. Unknown keys and bad values raise `ConfigError` with a
one-line message; `idagym train` prints it and exits 2.

The defaults are LOOP on SmolLM2-135M with LoRA on the built-in AppWorld tasks, sized for 2 CPU
cores; a YAML file changes what it names. `idagym train` with no file runs the main job instead
(`idagym.algorithms.main_job`: a warm start, then LOOP).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field, fields
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from idagym.agents.config import CollectorConfig, ModelConfig, PolicyConfig
from idagym.devices import check_dtype, resolve_device


class ConfigError(ValueError):
    """A configuration that cannot run; the message is one line, for the user."""


@dataclass
class AlgorithmConfig:
    """Which algorithm, and the knobs of its advantage and loss (ablations are options here)."""

    name: str = "loop"
    """Registered algorithm: loop, rloo, grpo, ppo, or sft (supervised warm start from demonstrations)."""
    clip_eps: float = 0.2
    """PPO clip epsilon (LOOP's public code: 0.1)."""
    clip_mode: str = "symmetric"
    """'symmetric': ratio in [1-eps, 1+eps]; 'inverse': [1/(1+eps), 1+eps] as in LOOP's public code."""
    ratio_level: str = "token"
    """Importance ratio per 'token' (LOOP), 'turn' or 'trajectory' (the paper's ablations)."""
    adv_threshold: float = 0.01
    """LOOP: drop trajectories whose |advantage| is below this (the paper: 0.01)."""
    std_normalize: bool | None = None
    """Divide advantages by the group's reward std; None: the algorithm's own choice (GRPO yes, others no)."""
    kl_coef: float = 0.0
    """GRPO: beta of the KL penalty to the reference policy (LoRA: the base model, adapter off)."""
    gamma: float = 1.0
    """PPO: discount per generated token."""
    lam: float = 1.0
    """PPO: GAE lambda (the paper's PPO baseline only worked with 1)."""
    vf_coef: float = 0.5
    """PPO: weight of the value loss."""
    value_clip: float = 0.2
    """PPO: clip range of the value update around the old values."""
    whiten_advantages: bool = True
    """PPO: normalise advantages to mean 0 / std 1 over the batch's generated tokens."""
    critic_width: int = 256
    """PPO: hidden width of the value-head MLP."""
    tis_cap: float | None = None
    """Truncated importance sampling: weight each generated token's advantage by min(pi_trainer / mu_sampler,
    tis_cap) and take the trainer's log-probs as the old policy (for a sampler such as vLLM whose
    numerics differ from the trainer's); None: off."""
    critic_layers: int = 3
    """PPO: number of linear layers of the value head (the paper: 3)."""


@dataclass
class TrainConfig:
    """The training loop: data per iteration, optimiser, evaluation, run folder."""

    env: str = "idagym/AppWorld-v0"
    """Gymnasium id of the environment (any registered idagym DigitalEnv)."""
    split: str = "train"
    """Split whose tasks are trained on (and, for sft, whose demonstrations are used)."""
    demonstrations: str | None = None
    """sft: a JSONL file of demonstrations in the buffer's format (e.g. filtered successful rollouts);
    None: the environment's ground-truth solutions of `split`, played through the policy."""
    eval_split: str = "dev"
    """Split of the periodic and final evaluations."""
    iterations: int = 4
    """Collect-then-update iterations (the default main job: about 5 minutes on 2 cores)."""
    tasks_per_iteration: int = 2
    """Tasks sampled per iteration; each is rolled out collector.group_size (K) times."""
    task_order: str = "random"
    """random: each iteration draws its tasks afresh; epochs: iterations walk through the training
    tasks in a new shuffled order each pass, so every task comes once per pass (what supervised
    training on a fixed set wants)."""
    lr: float = 5e-5
    """AdamW learning rate (the paper: 5e-5 constant)."""
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    """AdamW betas."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    epochs: int | None = None
    """Passes over each iteration's data; None: the algorithm's default (LOOP/GRPO/PPO 2, RLOO 1)."""
    minibatch_size: int = 4
    """Trajectories per optimiser step."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (0: off)."""
    entropy_coef: float = 0.0
    """Entropy bonus weight added to every algorithm's loss (0: none, as in the paper)."""
    kl_threshold: float | None = None
    """Stop an iteration's remaining minibatches once the approx KL to the behaviour policy passes this."""
    critic_lr: float | None = None
    """Learning rate of the value head (None: same as lr)."""
    eval_every: int = 0
    """Evaluate on eval_split every this many iterations (0: only before and after training)."""
    eval_tasks: int = 2
    """Tasks of eval_split per evaluation (0: all)."""
    eval_episodes_per_task: int = 1
    """Episodes per evaluation task (hidden facts are drawn per episode)."""
    eval_before: bool = True
    """Measure success before training as well as after."""
    eval_cache: bool = False
    """Reuse an evaluation already made of the same weights with the same settings, tasks and seed
    (`idagym.evaluation.EvalCache`); every evaluation uses the same episodes' seeds either way."""
    seed: int = 0
    """Seed of task sampling, rollouts, minibatch order and model init."""
    run_dir: str | None = None
    """Run folder; None: runs/<algorithm>-<time>."""
    save_every: int = 1
    """Checkpoint every this many iterations (the latest only is kept)."""
    save_trajectories: bool = True
    """Append every iteration's trajectories to trajectories.jsonl."""
    progress: bool = True
    """Progress bars."""
    threads: int = 2
    """torch CPU threads (the Lookup configs use 1: a tiny model gains nothing from more)."""
    device: str = "auto"
    """Where the model, generation, the trainer and the critic run: auto (CUDA when present), cpu,
    cuda or cuda:N. Weights are in model.dtype; log-softmax, ratios and losses are computed in fp32."""
    sharding: str = "none"
    """How several ranks hold the policy: none (each a whole copy; DDP averages the gradients) or
    fsdp2 (torch FSDP2: weights, gradients and optimiser state sharded for the loss pass; generation
    and no-grad scoring gather the whole weights). One process ignores it."""


@dataclass
class Config:
    """Everything one training run needs."""

    model: ModelConfig = field(default_factory=lambda: ModelConfig(name="smollm2-135m", lora=True))
    policy: PolicyConfig = field(default_factory=lambda: PolicyConfig(max_new_tokens=96, max_context_tokens=4096))
    collector: CollectorConfig = field(default_factory=lambda: CollectorConfig(num_envs=8, group_size=4, env_kwargs={"max_turns": 3}))
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


CHOICES = {
    "algorithm.clip_mode": ("symmetric", "inverse"),
    "algorithm.ratio_level": ("token", "turn", "trajectory"),
    "policy.action_format": ("code_block", "raw"),
    "policy.backend": ("hf", "vllm"),
    "model.dtype": ("float32", "bfloat16", "float16"),
    "train.task_order": ("random", "epochs"),
    "train.sharding": ("none", "fsdp2"),
}
POSITIVE = ["train.iterations", "train.tasks_per_iteration", "train.minibatch_size", "train.lr",
            "collector.group_size", "collector.num_envs", "policy.max_new_tokens", "policy.temperature",
            "train.save_every", "train.threads"]
NON_NEGATIVE = ["train.grad_clip", "train.eval_every", "train.eval_tasks", "train.entropy_coef",
                "algorithm.clip_eps", "algorithm.kl_coef", "algorithm.adv_threshold"]


def _one_line(err: OmegaConfBaseException, where: str) -> str:
    key = getattr(err, "full_key", None) or ""
    if isinstance(err, ConfigKeyError):
        return f"unknown config key {key!r} ({where})"
    msg = str(err).splitlines()[0].strip()
    if isinstance(err, ValidationError):
        return f"bad value for {key} ({where}): {msg}"
    return f"invalid configuration ({where}): {msg}"


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Defaults <- YAML file <- `key=value` overrides, checked; raises ConfigError (one line)."""
    merged: DictConfig = OmegaConf.structured(Config)
    try:
        if path is not None:
            if not os.path.isfile(path):
                raise ConfigError(f"config file not found: {path}")
            merged = OmegaConf.merge(merged, OmegaConf.load(path))
    except OmegaConfBaseException as err:
        raise ConfigError(_one_line(err, str(path))) from None
    except Exception as err:  # YAML syntax errors
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"cannot read {path}: {str(err).splitlines()[0]}") from None
    train_keys = {f.name for f in fields(TrainConfig)}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value")
        if item.split("=", 1)[0] in train_keys:  # shorthand: env=X means train.env=X
            item = f"train.{item}"
        try:
            merged = OmegaConf.merge(merged, OmegaConf.from_dotlist([item]))
        except OmegaConfBaseException as err:
            raise ConfigError(_one_line(err, f"override {item}")) from None
    cfg: Config = OmegaConf.to_object(merged)  # type: ignore[assignment]
    validate(cfg)
    return cfg


def _get(cfg: Config, dotted: str) -> Any:
    obj: Any = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def validate(cfg: Config) -> None:
    """Value checks the type system cannot express; raises ConfigError."""
    from idagym.algorithms import ALGORITHMS

    if cfg.algorithm.name not in ALGORITHMS:
        raise ConfigError(f"algorithm.name={cfg.algorithm.name!r} is not one of {', '.join(sorted(ALGORITHMS))}")
    if cfg.train.demonstrations and ALGORITHMS[cfg.algorithm.name].learns_from != "demonstrations":
        raise ConfigError(f"train.demonstrations is read only by algorithms that learn from demonstrations "
                          f"(sft), not {cfg.algorithm.name}")
    for key, allowed in CHOICES.items():
        if _get(cfg, key) not in allowed:
            raise ConfigError(f"{key}={_get(cfg, key)!r} is not one of {', '.join(allowed)}")
    for key in POSITIVE:
        if not _get(cfg, key) > 0:
            raise ConfigError(f"{key} must be > 0, got {_get(cfg, key)}")
    for key in NON_NEGATIVE:
        if _get(cfg, key) < 0:
            raise ConfigError(f"{key} must be >= 0, got {_get(cfg, key)}")
    if cfg.algorithm.tis_cap is not None and not cfg.algorithm.tis_cap > 0:
        raise ConfigError(f"algorithm.tis_cap must be > 0 (or null: off), got {cfg.algorithm.tis_cap}")
    if cfg.train.sharding == "fsdp2" and cfg.policy.backend == "vllm":
        raise ConfigError("train.sharding=fsdp2 with policy.backend=vllm is not supported yet: the weights handed to "
                          "the server would have to be gathered first; use train.sharding=none")
    if cfg.policy.top_p < 1:
        raise ConfigError(f"policy.top_p={cfg.policy.top_p} cannot be trained with: behaviour log-probs are of the "
                          "untruncated distribution; use top_p=1 (and a lower temperature) for training")
    if cfg.train.epochs is not None and cfg.train.epochs < 1:
        raise ConfigError(f"train.epochs must be >= 1 (or null for the algorithm's default), got {cfg.train.epochs}")
    if len(cfg.train.adam_betas) != 2 or not all(0 <= b < 1 for b in cfg.train.adam_betas):
        raise ConfigError(f"train.adam_betas must be two numbers in [0, 1), got {list(cfg.train.adam_betas)}")
    if not 0 <= cfg.algorithm.lam <= 1 or not 0 <= cfg.algorithm.gamma <= 1:
        raise ConfigError("algorithm.gamma and algorithm.lam must lie in [0, 1]")
    from idagym.algorithms.ranks import world_size

    check_world_size(cfg, world_size())
    try:
        device = resolve_device(cfg.train.device)
    except ValueError as err:
        raise ConfigError(f"train.{err}") from None
    try:
        check_dtype(device, cfg.model.dtype)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    import gymnasium as gym

    import idagym  # noqa: F401  (registers the built-in environments)

    module, _, env_id = cfg.train.env.rpartition(":")
    if module:  # Gymnasium's "module:Env-v0" form: importing the module registers the env
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ConfigError(f"train.env: cannot import {module!r} ({err}); run from the folder that holds it") from None
    if env_id not in gym.registry:
        raise ConfigError(f"train.env={cfg.train.env!r} is not a registered environment (see `idagym envs`)")


def check_world_size(cfg: Config, world: int) -> None:
    """Each of `world` ranks takes whole task groups and an equal share of each minibatch."""
    for key in ("train.tasks_per_iteration", "train.minibatch_size"):
        if _get(cfg, key) % world:
            raise ConfigError(f"{key}={_get(cfg, key)} is not divisible by the {world} processes: "
                              f"make it a multiple of {world}")


def to_yaml(cfg: Config) -> str:
    """The resolved config as YAML (what a run folder keeps, and what --resume reads back)."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
