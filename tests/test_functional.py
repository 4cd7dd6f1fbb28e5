"""The algorithms' building blocks against numbers worked out by hand."""

import math

import pytest
import torch

from idagym.algorithms import functional as F


def t(x, dtype=torch.float32):
    return torch.tensor(x, dtype=dtype)


def test_loo_advantage_by_hand():
    rewards = t([1.0, 0.0, 0.0, 1.0, 0.5, 0.7])
    groups = t([0, 0, 0, 0, 1, 2], torch.int64)
    adv = F.loo_advantage(rewards, groups)
    # R_0 - mean(0, 0, 1) = 2/3; R_1 - mean(1, 0, 1) = -2/3; groups of one get 0
    assert torch.allclose(adv, t([2 / 3, -2 / 3, -2 / 3, 2 / 3, 0.0, 0.0]), atol=1e-6)


def test_loo_all_equal_rewards_give_zero():
    adv = F.loo_advantage(t([1.0, 1.0, 1.0]), t([3, 3, 3], torch.int64))
    assert torch.equal(adv, torch.zeros(3))


def test_loo_is_scaled_mean_baseline():
    # A_i^LOO = K/(K-1) (R_i - mean R): the unbiased version of the group-mean baseline
    r = t([0.2, 0.9, 0.4])
    adv = F.loo_advantage(r, t([0, 0, 0], torch.int64))
    assert torch.allclose(adv, 1.5 * (r - r.mean()), atol=1e-6)


def test_group_normalized_advantage_by_hand():
    adv = F.group_normalized_advantage(t([1.0, 0.0, 0.0, 1.0, 0.3]), t([0, 0, 0, 0, 1], torch.int64))
    # mean 0.5, sample std sqrt(1/3): 0.5 / 0.57735 = 0.8660
    assert torch.allclose(adv, t([0.8660, -0.8660, -0.8660, 0.8660, 0.0]), atol=1e-4)
    flat = F.group_normalized_advantage(t([0.4, 0.4]), t([0, 0], torch.int64))
    assert torch.equal(flat, torch.zeros(2))  # all equal: 0, not 0/0
    unscaled = F.group_normalized_advantage(t([1.0, 0.0]), t([0, 0], torch.int64), scale=False)
    assert torch.allclose(unscaled, t([0.5, -0.5]))


def test_last_token_rewards_and_broadcast():
    mask = t([[0, 1, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0]])
    r = F.last_token_rewards(t([0.7, 1.0]), mask)
    assert torch.equal(r, t([[0, 0, 0, 0, 0.7, 0], [0, 0, 0, 0, 0, 0]]))
    assert torch.equal(F.broadcast_to_tokens(t([2.0, 3.0]), mask)[0], t([0, 2, 2, 0, 2, 0]))


def test_gae_skips_observation_tokens():
    mask = t([[0, 1, 1, 0, 1]])
    values = t([[9.0, 0.5, 0.6, 9.0, 0.8]])  # values off the mask must not matter
    rewards = F.last_token_rewards(t([1.0]), mask)
    adv, ret = F.gae(rewards, values, mask, gamma=1.0, lam=1.0)
    assert torch.allclose(adv, t([[0, 0.5, 0.4, 0, 0.2]]), atol=1e-6)  # lambda=1: return 1 - V
    assert torch.allclose(ret, t([[0, 1, 1, 0, 1]]), atol=1e-6)
    adv, _ = F.gae(rewards, values, mask, gamma=0.9, lam=0.5)
    # k=4: 1 - .8 = .2; k=2: .9*.8 - .6 + .45*.2 = .21; k=1: .9*.6 - .5 + .45*.21 = .1345
    assert torch.allclose(adv, t([[0, 0.1345, 0.21, 0, 0.2]]), atol=1e-6)


def test_masked_means():
    x = t([[1.0, 2.0, 7.0], [3.0, 5.0, 5.0], [4.0, 4.0, 4.0]])
    mask = t([[1, 1, 0], [1, 0, 0], [0, 0, 0]])
    assert F.masked_mean(x, mask).item() == pytest.approx(2.0)  # (1 + 2 + 3) / 3
    assert F.seq_mean_then_batch_mean(x, mask).item() == pytest.approx(2.25)  # (1.5 + 3) / 2, empty row ignored
    assert torch.allclose(F.masked_mean(x, mask, dim=1), t([1.5, 3.0, 0.0]))
    w = F.masked_whiten(t([[1.0, 3.0, 100.0]]), t([[1, 1, 0]]))
    assert torch.allclose(w, t([[-1.0, 1.0, 0.0]]), atol=1e-6)


def test_clipped_surrogate_by_hand():
    ratio = t([1.5, 0.5, 0.5, 1.5, 1.0])
    adv = t([1.0, 1.0, -1.0, -1.0, 2.0])
    loss = F.clipped_surrogate(ratio, adv, 0.8, 1.2)
    # -min(1.5, 1.2); -min(.5, .8); -min(-.5, -.8); -min(-1.5, -1.2); -2
    assert torch.allclose(loss, t([-1.2, -0.5, 0.8, 1.5, -2.0]))


def test_clip_bounds():
    assert F.clip_bounds(0.2) == pytest.approx((0.8, 1.2))
    assert F.clip_bounds(0.1, "inverse") == pytest.approx((1 / 1.1, 1.1))
    with pytest.raises(ValueError):
        F.clip_bounds(0.1, "both")


def test_aggregate_log_ratio_levels():
    lr = t([[0.0, 0.1, 0.2, 5.0, 0.3]])
    mask = t([[0, 1, 1, 0, 1]])
    turns = t([[-1, 0, 0, -1, 1]], torch.int64)
    assert torch.allclose(F.aggregate_log_ratio(lr, mask, turns, "token"), t([[0, 0.1, 0.2, 0, 0.3]]))
    assert torch.allclose(F.aggregate_log_ratio(lr, mask, turns, "turn"), t([[0, 0.3, 0.3, 0, 0.3]]))
    assert torch.allclose(F.aggregate_log_ratio(lr, mask, turns, "trajectory"), t([[0, 0.6, 0.6, 0, 0.6]]))
    with pytest.raises(ValueError):
        F.aggregate_log_ratio(lr, mask, turns, "episode")


def test_diagnostics():
    mask = t([[1, 1, 0]])
    logp = t([[math.log(2.0), 0.0, 3.0]])
    old = torch.zeros(1, 3)
    # only the first token moved (r=2): (2 - 1 - ln 2) / 2 tokens
    assert F.approx_kl(logp, old, mask).item() == pytest.approx((1 - math.log(2)) / 2, abs=1e-6)
    assert F.clip_fraction(t([[2.0, 1.0, 9.0]]), mask, 0.8, 1.2).item() == pytest.approx(0.5)
    assert F.kl_to_reference(t([0.3]), t([0.3])).item() == 0.0
    target = t([[1.0, 2.0, 3.0]])
    full = torch.ones(1, 3)
    assert F.explained_variance(target, target, full).item() == pytest.approx(1.0)
    assert F.explained_variance(torch.full((1, 3), 2.0), target, full).item() == pytest.approx(0.0)
    assert math.isnan(F.explained_variance(target, torch.ones(1, 3), full).item())


def test_group_std():
    std = F.group_std(t([1.0, 0.0, 0.0, 1.0, 0.3]), t([0, 0, 0, 0, 1], torch.int64))
    assert torch.allclose(std, t([0.57735, 0.57735, 0.57735, 0.57735, 0.0]), atol=1e-5)
