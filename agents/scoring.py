"""Log-probabilities of given tokens under a causal LM: the one scoring rule shared by sampling,
training and tests, so behaviour and trainer log-probs agree."""

from __future__ import annotations

import torch


def next_token_logp(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log of the temperature-scaled next-token distribution, in float32 (the sampling rule)."""
    return torch.log_softmax(logits.float() / temperature, dim=-1)


def token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log p(input_ids[:, t] | input_ids[:, :t]) at position t; position 0 gets 0.

    logits: [N, T, V] from a forward pass over input_ids [N, T]. Scores use the sampling
    temperature, which must equal the one used to generate.
    """
    picked = next_token_logp(logits[:, :-1], temperature).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    return torch.nn.functional.pad(picked, (1, 0))
