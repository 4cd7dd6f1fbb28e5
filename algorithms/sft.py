"""Supervised warm start from demonstrations (behaviour cloning), through the same trainer as RL.

  L = - mean_t log pi(a_t | s_t)     over the demonstrated tokens (loss mask 1), no advantage

Demonstrations are token-in/token-out trajectories built with the policy's own prompt, chat
template and loss mask (`idagym.demonstrations`), so the tokens trained on are exactly the tokens
the policy would generate.
"""

from __future__ import annotations

import torch
from tianshou.data import Batch

from idagym.algorithms import functional as F
from idagym.algorithms.base import Algorithm, ModelOutputs, register_algorithm


@register_algorithm("sft")
class SFT(Algorithm):
    learns_from = "demonstrations"

    def compute_advantages(self, batch: Batch) -> Batch:
        batch.advantages = batch.loss_mask.float()  # every demonstrated token counts once
        return batch

    def loss(self, out: ModelOutputs, mb: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        nll = -F.masked_mean(out.logprobs, mb.loss_mask)
        return nll, {"nll": nll.item()}
