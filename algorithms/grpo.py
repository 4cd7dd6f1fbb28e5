"""GRPO (Shao et al. 2024): group-normalised advantages, per-token clip, optional KL to a reference.

  A_i = (R_i - mean_j R_j) / (std_j R_j + eps)
  L   = - 1/N sum_i 1/|y_i| sum_t [ min(r_t A_i, clip(r_t) A_i) - beta KL_t(pi || ref) ]
"""

from __future__ import annotations

import torch
from tianshou.data import Batch

from idagym.algorithms import functional as F
from idagym.algorithms.base import Algorithm, ModelOutputs, register_algorithm


@register_algorithm("grpo")
class GRPO(Algorithm):
    epochs_default = 2

    @property
    def needs_reference(self) -> bool:
        return self.cfg.kl_coef > 0

    def compute_advantages(self, batch: Batch) -> Batch:
        scale = self.cfg.std_normalize is not False  # GRPO normalises unless the ablation turns it off
        adv = F.group_normalized_advantage(batch.reward, batch.group_id, scale=scale)
        batch.advantages = F.broadcast_to_tokens(adv, batch.loss_mask)
        return batch

    loss_mean_over = "trajectories"  # per-sequence mean, then the batch mean

    def loss(self, out: ModelOutputs, mb: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        ratio = self.ratio(out, mb)
        per_token = F.clipped_surrogate(ratio, mb.advantages, self.clip_low, self.clip_high)
        metrics = {"clip_frac": F.clip_fraction(ratio, mb.loss_mask, self.clip_low, self.clip_high).item()}
        if self.needs_reference:
            kl = F.kl_to_reference(out.logprobs, mb.ref_logprobs)
            per_token = per_token + self.cfg.kl_coef * kl
            metrics["kl_ref"] = F.masked_mean(kl, mb.loss_mask).item()
        return F.seq_mean_then_batch_mean(per_token, mb.loss_mask), metrics
