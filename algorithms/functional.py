"""Pure tensor functions the algorithms are written in: baselines, GAE, masked means, the clipped
surrogate and the diagnostics (approx KL, clip fraction, explained variance).

Shapes: per-trajectory tensors are [N]; per-token tensors are [N, T] aligned like
`agents.scoring.token_logprobs` (position t scores token t); `mask` is 1 on generated tokens.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def _group_stats(rewards: torch.Tensor, group_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-trajectory (group size, group sum, group sum of squares), gathered back to [N]."""
    _, inverse = torch.unique(group_ids, return_inverse=True)
    g = int(inverse.max()) + 1 if len(inverse) else 0
    r = rewards.double()
    count = torch.zeros(g, dtype=torch.float64, device=r.device).index_add_(0, inverse, torch.ones_like(r))
    total = torch.zeros(g, dtype=torch.float64, device=r.device).index_add_(0, inverse, r)
    sq = torch.zeros(g, dtype=torch.float64, device=r.device).index_add_(0, inverse, r * r)
    return count[inverse], total[inverse], sq[inverse]


def loo_advantage(rewards: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
    """Leave-one-out baseline: A_i = R_i - mean_{j != i} R_j over i's group; a group of one gets 0."""
    count, total, _ = _group_stats(rewards, group_ids)
    others = (total - rewards.double()) / (count - 1).clamp(min=1)
    adv = torch.where(count > 1, rewards.double() - others, torch.zeros_like(others))
    return adv.to(rewards.dtype)


def group_normalized_advantage(
    rewards: torch.Tensor, group_ids: torch.Tensor, eps: float = 1e-6, scale: bool = True
) -> torch.Tensor:
    """GRPO: A_i = (R_i - mean R) / (std R + eps) over i's group (std with Bessel's correction,
    as in the GRPO paper's code); `scale=False` keeps only the mean baseline. A group of one gets 0."""
    count, total, _ = _group_stats(rewards, group_ids)
    adv = rewards.double() - total / count
    if scale:
        adv = adv / (group_std(rewards, group_ids).double() + eps)
    adv = torch.where(count > 1, adv, torch.zeros_like(adv))
    return adv.to(rewards.dtype)


def group_std(rewards: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
    """Sample standard deviation of each trajectory's group reward, gathered to [N] (0 for one)."""
    count, total, sq = _group_stats(rewards, group_ids)
    var = ((sq - total * total / count) / (count - 1).clamp(min=1)).clamp(min=0)
    return var.sqrt().to(rewards.dtype)


def broadcast_to_tokens(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-trajectory values [N] -> per-token [N, T], zero where the mask is 0."""
    return values[:, None].to(mask.dtype) * mask


def last_token_rewards(rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Place each episode's reward on its last generated token (the only non-zero reward)."""
    pos = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    last = torch.where(mask > 0, pos, torch.full_like(pos, -1)).max(dim=1).values
    out = torch.zeros_like(mask, dtype=torch.float32)
    has = last >= 0
    out[has.nonzero().squeeze(-1), last[has]] = rewards[has].float()
    return out


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0, lam: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over the generated tokens of each row.

    Each generated token is one step; prompt/observation tokens (mask 0) are skipped, so the next
    state of a turn's last token is the next turn's first generated token, and the last generated
    token is terminal (next value 0). Returns (advantages, returns = advantages + values), 0 off-mask.
    """
    n, t = mask.shape
    adv = torch.zeros(n, t, dtype=torch.float32, device=mask.device)
    next_value = torch.zeros(n, dtype=torch.float32, device=mask.device)
    next_adv = torch.zeros(n, dtype=torch.float32, device=mask.device)
    for k in range(t - 1, -1, -1):
        m = mask[:, k] > 0
        delta = rewards[:, k] + gamma * next_value - values[:, k]
        a = delta + gamma * lam * next_adv
        adv[:, k] = torch.where(m, a, torch.zeros_like(a))
        next_value = torch.where(m, values[:, k].float(), next_value)
        next_adv = torch.where(m, a, next_adv)
    returns = (adv + values) * mask
    return adv, returns


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of x over positions where mask is 1 (all of them, or along `dim`); 0 if none."""
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1)
    return (x * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def seq_mean_then_batch_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """GRPO's aggregation: mean over each sequence's generated tokens, then over sequences with any."""
    has = (mask.sum(1) > 0).to(x.dtype)
    return (masked_mean(x, mask, dim=1) * has).sum() / has.sum().clamp(min=1)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8,
                  total: Callable[[torch.Tensor], torch.Tensor] = lambda s: s) -> torch.Tensor:
    """(x - mean) / std over the masked positions, 0 off-mask (PPO's advantage whitening). `total`
    sums a scalar over the ranks, so that mean and std are those of every rank's positions."""
    count = total(mask.sum()).clamp(min=1)
    mean = total((x * mask).sum()) / count
    var = total((((x - mean) ** 2) * mask).sum()) / count
    return (x - mean) / (var.sqrt() + eps) * mask


def clip_bounds(eps: float, mode: str = "symmetric") -> tuple[float, float]:
    """Ratio clip range: [1 - eps, 1 + eps], or 'inverse' [1/(1+eps), 1+eps] (LOOP's public code)."""
    if mode == "symmetric":
        return 1.0 - eps, 1.0 + eps
    if mode == "inverse":
        return 1.0 / (1.0 + eps), 1.0 + eps
    raise ValueError(f"clip mode must be 'symmetric' or 'inverse', got {mode!r}")


def clipped_surrogate(ratio: torch.Tensor, adv: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """PPO's per-position loss: -min(r A, clip(r, low, high) A)."""
    return -torch.minimum(ratio * adv, ratio.clamp(low, high) * adv)


def aggregate_log_ratio(
    log_ratio: torch.Tensor, mask: torch.Tensor, turn_index: torch.Tensor, level: str = "token"
) -> torch.Tensor:
    """Importance log-ratio at the chosen level, broadcast back to tokens [N, T].

    token: log pi/mu of each token; turn: sum over the turn's generated tokens (the ratio of the
    whole response's probabilities); trajectory: sum over every generated token of the episode.
    """
    lr = log_ratio * mask
    if level == "token":
        return lr
    if level == "trajectory":
        return lr.sum(1, keepdim=True).expand_as(lr) * mask
    if level == "turn":
        turns = turn_index.clamp(min=0)
        n_turns = int(turns.max()) + 1 if turns.numel() else 1
        per_turn = torch.zeros(lr.shape[0], n_turns, dtype=lr.dtype, device=lr.device).scatter_add_(1, turns, lr)
        return per_turn.gather(1, turns) * mask
    raise ValueError(f"ratio level must be 'token', 'turn' or 'trajectory', got {level!r}")


def approx_kl(logp: torch.Tensor, old_logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 estimate of KL(old || new): mean of (r - 1) - log r, r = pi/old, over the mask."""
    log_r = (logp - old_logp) * mask
    return masked_mean(torch.expm1(log_r) - log_r, mask)


def kl_to_reference(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(pi || ref) at tokens sampled from pi (GRPO's penalty)."""
    d = ref_logp - logp
    return torch.expm1(d) - d


def clip_fraction(ratio: torch.Tensor, mask: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Share of generated tokens whose ratio lies outside [low, high]."""
    return masked_mean(((ratio < low) | (ratio > high)).to(mask.dtype), mask)


def explained_variance(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """1 - Var[target - pred] / Var[target] over the mask (1: perfect critic, <= 0: useless)."""
    t_mean = masked_mean(target, mask)
    var_t = masked_mean((target - t_mean) ** 2, mask)
    diff = target - pred
    var_d = masked_mean((diff - masked_mean(diff, mask)) ** 2, mask)
    return torch.where(var_t > 0, 1 - var_d / var_t.clamp(min=1e-12), torch.full_like(var_t, float("nan")))


def logprob_mismatch(trainer_logp: torch.Tensor, behaviour_logp: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """How far the sampler's log-probs are from the trainer's on the same tokens, before any update:
    mean and max |delta| per generated token, and the share whose ratio lies outside [0.5, 2]."""
    delta = (trainer_logp - behaviour_logp).abs() * mask
    return {"logp_mismatch_mean": float(masked_mean(delta, mask)), "logp_mismatch_max": float(delta.max()) if delta.numel() else 0.0,
            "logp_mismatch_ratio_out": float(masked_mean((delta > math.log(2)).to(mask.dtype), mask))}


def truncated_importance_weights(trainer_logp: torch.Tensor, behaviour_logp: torch.Tensor, mask: torch.Tensor,
                                 cap: float) -> torch.Tensor:
    """min(pi_trainer / mu_sampler, cap) per generated token (0 elsewhere): corrects a loss whose data
    came from a sampler that differs from the trainer's policy (e.g. another engine's numerics)."""
    return torch.exp(trainer_logp - behaviour_logp).clamp(max=cap) * mask
