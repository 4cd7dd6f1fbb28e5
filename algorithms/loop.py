"""LOOP (Chen et al. 2025): leave-one-out PPO, no critic, no reference, one copy of the LLM.

  A_i   = R_i - 1/(K-1) sum_{j != i} R_j          (no std normalisation; drop |A_i| < threshold)
  r_t   = pi(a_t | s_t) / mu(a_t | s_t)            (per token; turn/trajectory as ablations)
  L     = - mean_t min(r_t A_i, clip(r_t, 1-eps, 1+eps) A_i)   over all generated tokens
"""

from __future__ import annotations

import torch
from tianshou.data import Batch

from idagym.algorithms import functional as F
from idagym.algorithms.base import Algorithm, ModelOutputs, register_algorithm


@register_algorithm("loop")
class LOOP(Algorithm):
    epochs_default = 2

    def compute_advantages(self, batch: Batch) -> Batch:
        adv = F.loo_advantage(batch.reward, batch.group_id)
        if self.cfg.std_normalize:  # ablation: reward normalisation on (LOOP itself has it off)
            adv = adv / (F.group_std(batch.reward, batch.group_id) + 1e-6)
        keep = (adv.abs() >= self.cfg.adv_threshold).numpy()
        batch = batch[keep]
        batch.advantages = F.broadcast_to_tokens(adv[torch.from_numpy(keep)], batch.loss_mask)
        return batch

    def loss(self, out: ModelOutputs, mb: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        ratio = self.ratio(out, mb)
        loss = F.masked_mean(F.clipped_surrogate(ratio, mb.advantages, self.clip_low, self.clip_high), mb.loss_mask)
        return loss, {"clip_frac": F.clip_fraction(ratio, mb.loss_mask, self.clip_low, self.clip_high).item()}
