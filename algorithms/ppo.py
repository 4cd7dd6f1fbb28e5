"""PPO with a learned critic (the paper's baseline): value head on the last hidden state, GAE.

  r_T = R (reward on the last generated token), 0 elsewhere
  A_t = GAE(gamma, lambda) over generated tokens;  G_t = A_t + V_old(s_t);  A_t whitened over the batch
  L   = - mean_t min(r_t A_t, clip(r_t) A_t)  +  c_v * mean_t 1/2 max((V - G)^2, (V_old + clip(V - V_old, +-eps_v) - G)^2)
"""

from __future__ import annotations

import torch
from tianshou.data import Batch

from idagym.algorithms import functional as F
from idagym.algorithms.base import Algorithm, ModelOutputs, register_algorithm


@register_algorithm("ppo")
class PPO(Algorithm):
    needs_critic = True
    epochs_default = 2

    def compute_advantages(self, batch: Batch) -> Batch:
        rewards = F.last_token_rewards(batch.reward, batch.loss_mask)
        batch.advantages, batch.returns = F.gae(rewards, batch.old_values, batch.loss_mask, self.cfg.gamma, self.cfg.lam)
        return batch

    @property
    def whitens_advantages(self) -> bool:
        return self.cfg.whiten_advantages

    def loss(self, out: ModelOutputs, mb: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        ratio = self.ratio(out, mb)
        policy_loss = F.masked_mean(F.clipped_surrogate(ratio, mb.advantages, self.clip_low, self.clip_high), mb.loss_mask)
        v_clipped = mb.old_values + (out.values - mb.old_values).clamp(-self.cfg.value_clip, self.cfg.value_clip)
        v_loss = 0.5 * torch.maximum((out.values - mb.returns) ** 2, (v_clipped - mb.returns) ** 2)
        value_loss = F.masked_mean(v_loss, mb.loss_mask)
        return policy_loss + self.cfg.vf_coef * value_loss, {
            "clip_frac": F.clip_fraction(ratio, mb.loss_mask, self.clip_low, self.clip_high).item(),
            "policy_loss": policy_loss.item(),
            "value_loss": value_loss.item(),
        }
