"""RLOO (Ahmadian et al. 2024): REINFORCE with the leave-one-out baseline, one on-policy pass.

  A_i = R_i - 1/(K-1) sum_{j != i} R_j
  L   = - mean_i A_i * sum_t log pi(a_t | s_t)      (sequence level: the whole trajectory's log-prob)
"""

from __future__ import annotations

import torch
from tianshou.data import Batch

from idagym.algorithms import functional as F
from idagym.algorithms.base import Algorithm, ModelOutputs, register_algorithm


@register_algorithm("rloo")
class RLOO(Algorithm):
    epochs_default = 1
    loss_mean_over = "trajectories"

    def compute_advantages(self, batch: Batch) -> Batch:
        adv = F.loo_advantage(batch.reward, batch.group_id)
        if self.cfg.std_normalize:
            adv = adv / (F.group_std(batch.reward, batch.group_id) + 1e-6)
        batch.advantages = F.broadcast_to_tokens(adv, batch.loss_mask)
        return batch

    def loss(self, out: ModelOutputs, mb: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        seq_logp = (out.logprobs * mb.loss_mask).sum(1)
        seq_adv = mb.advantages.sum(1) / mb.loss_mask.sum(1).clamp(min=1)  # A_i, broadcast back per row
        return -(seq_adv * seq_logp).mean(), {}
