"""What every algorithm is to the trainer: a way to compute advantages and a loss.

The trainer collects, pads, shuffles, steps and logs; an `Algorithm` only says
`compute_advantages(batch) -> batch with per-token advantages` and `loss(outputs, minibatch)`.
Algorithms are found by name through `register_algorithm` / `make_algorithm` (SkyRL-style).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
from tianshou.data import Batch
from torch import nn

from idagym.algorithms import functional as F

if TYPE_CHECKING:
    from idagym.config import AlgorithmConfig


@dataclass
class ModelOutputs:
    """The trainer's forward pass over a minibatch, aligned with `mb.input_ids` ([N, T])."""

    logprobs: torch.Tensor  # log pi(token_t | prefix), recomputed at the sampling temperature
    entropy: torch.Tensor  # entropy of the next-token distribution that produced token_t
    values: torch.Tensor | None = None  # critic's V(prefix before token_t), when needs_critic


class Algorithm(ABC):
    """Advantage + loss. Class attributes tell the trainer what else to prepare."""

    name: ClassVar[str] = ""
    needs_critic: ClassVar[bool] = False  # trainer builds a ValueHead and fills batch.old_values
    epochs_default: ClassVar[int] = 1  # passes over each iteration's data unless the config says otherwise
    learns_from: ClassVar[str] = "rollouts"  # or "demonstrations": trained on the env's solutions (or a file)
    loss_mean_over: ClassVar[str] = "tokens"  # or "trajectories": what `loss` averages over

    def __init__(self, cfg: AlgorithmConfig):
        self.cfg = cfg
        self.clip_low, self.clip_high = F.clip_bounds(cfg.clip_eps, cfg.clip_mode)

    @property
    def whitens_advantages(self) -> bool:
        """Whether the trainer normalises the advantages to mean 0 / std 1 over all the iteration's
        generated tokens (every rank's: statistics of the whole batch, as in one process)."""
        return False

    @property
    def needs_reference(self) -> bool:
        """Whether the trainer must fill batch.ref_logprobs (log-probs under the initial policy)."""
        return False

    @abstractmethod
    def compute_advantages(self, batch: Batch) -> Batch:
        """Return the batch to train on (rows may be dropped) with `advantages` [N, T] (and
        `returns` for critics), zero off the loss mask."""

    @abstractmethod
    def loss(self, out: ModelOutputs, mb: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss to minimise on one minibatch, and metrics to log."""

    def loss_weight(self, mb: Batch) -> float:
        """How many things `loss` averages over in `mb`. With several ranks the trainer weights each
        rank's loss by its share of the whole minibatch's, so ranks give the one-process gradient."""
        return float(mb.loss_mask.sum()) if self.loss_mean_over == "tokens" else float(len(mb))

    # shared by the clipped-surrogate algorithms
    def ratio(self, out: ModelOutputs, mb: Batch) -> torch.Tensor:
        """pi/mu at the configured level (token, turn, trajectory), against behaviour log-probs."""
        log_ratio = F.aggregate_log_ratio(out.logprobs - mb.old_logprobs, mb.loss_mask, mb.turn_index, self.cfg.ratio_level)
        return torch.exp(log_ratio)


class ValueHead(nn.Module):
    """A small MLP critic on the policy's last hidden state (the paper's PPO baseline: 3 layers)."""

    def __init__(self, hidden_size: int, width: int = 256, layers: int = 3):
        super().__init__()
        dims = [hidden_size] + [width] * (layers - 1)
        mods: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            mods += [nn.Linear(a, b), nn.Tanh()]
        self.net = nn.Sequential(*mods, nn.Linear(dims[-1], 1))
        # last layer starts at 0: V = 0 at first, so early advantages are the plain returns
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [N, T, H] -> values [N, T] aligned like log-probs (position t: state before token t)."""
        v = self.net(hidden.float()).squeeze(-1)
        return torch.nn.functional.pad(v[:, :-1], (1, 0))


ALGORITHMS: dict[str, type[Algorithm]] = {}


def register_algorithm(name: str) -> Callable[[type[Algorithm]], type[Algorithm]]:
    """Class decorator: make an Algorithm available as `algorithm.name=<name>`."""

    def deco(cls: type[Algorithm]) -> type[Algorithm]:
        if name in ALGORITHMS:
            raise ValueError(f"algorithm {name!r} is already registered")
        cls.name = name
        ALGORITHMS[name] = cls
        return cls

    return deco


def make_algorithm(cfg: AlgorithmConfig) -> Algorithm:
    """Instantiate the registered algorithm named by `cfg.name`."""
    if cfg.name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {cfg.name!r}; choose one of {', '.join(sorted(ALGORITHMS))}")
    return ALGORITHMS[cfg.name](cfg)
