"""Trajectories and the one rollout buffer every algorithm learns from.

A trajectory keeps the exact token ids the policy saw and sampled over the whole multi-turn
episode, with a loss mask built while generating (1 only on sampled tokens) and the behaviour
log-probabilities of those tokens. The buffer groups trajectories by task (for leave-one-out and
group baselines), pads them into a tianshou `Batch`, and yields shuffled minibatches.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tianshou.data import Batch


@dataclass
class Turn:
    """One agent turn: what it was shown, what it said, and the action taken from it."""

    observation: str
    response: str = ""
    action: str = ""


@dataclass
class Trajectory:
    """One episode of one task, as text (turns) and as tokens (for training)."""

    task_id: str
    group_id: int = 0
    input_ids: list[int] = field(default_factory=list)
    loss_mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)  # behaviour log-prob per token, 0 where mask is 0
    turn_index: list[int] = field(default_factory=list)  # turn each token belongs to (-1: before the first response)
    turns: list[Turn] = field(default_factory=list)
    reward: float = 0.0
    success: bool = False
    terminated: bool = False
    truncated: bool = False
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated

    @property
    def num_generated(self) -> int:
        return int(sum(self.loss_mask))

    def extend(self, ids: list[int], *, generated: bool, logprobs: list[float] | None = None) -> None:
        """Append tokens; generated ones carry their behaviour log-probs and mask 1."""
        if generated and (logprobs is None or len(logprobs) != len(ids)):
            raise ValueError("generated tokens need one behaviour log-prob each")
        turn = len(self.turns) - 1 if generated else -1  # generated tokens belong to the latest turn
        self.input_ids += ids
        self.loss_mask += [int(generated)] * len(ids)
        self.logprobs += list(logprobs) if generated else [0.0] * len(ids)
        self.turn_index += [turn] * len(ids)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Trajectory:
        row = dict(row)
        row["turns"] = [Turn(**t) for t in row.get("turns", [])]
        return cls(**row)


def save_jsonl(trajectories: Iterable[Trajectory], path: str | os.PathLike, *, append: bool = True) -> None:
    """Write trajectories as JSON lines (append-only by default, flushed and fsynced)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a" if append else "w", encoding="utf-8") as f:
        for traj in trajectories:
            f.write(json.dumps(traj.to_json(), ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def load_jsonl(path: str | os.PathLike) -> list[Trajectory]:
    """Read trajectories written by `save_jsonl`; a torn last line (crash mid-write) is skipped."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                out.append(Trajectory.from_json(json.loads(line)))
            except json.JSONDecodeError:
                continue
    return out


class RolloutBuffer:
    """Holds one iteration's trajectories; pads them into token batches for the update."""

    def __init__(self, trajectories: Iterable[Trajectory] = ()):
        self.trajectories: list[Trajectory] = list(trajectories)

    def __len__(self) -> int:
        return len(self.trajectories)

    def add(self, trajectories: Iterable[Trajectory]) -> None:
        self.trajectories.extend(trajectories)

    def clear(self) -> None:
        self.trajectories.clear()

    def groups(self) -> dict[int, list[int]]:
        """Indices of trajectories per group (the K samples of one task)."""
        out: dict[int, list[int]] = defaultdict(list)
        for i, traj in enumerate(self.trajectories):
            out[traj.group_id].append(i)
        return dict(out)

    def to_batch(self, pad_token_id: int = 0) -> Batch:
        """Right-padded token arrays plus per-trajectory fields, as a tianshou Batch.

        Per token [N, T]: input_ids, attention_mask, loss_mask, old_logprobs, turn_index.
        Per trajectory [N]: reward, group_id, length, success, truncated.
        """
        if not self.trajectories:
            raise ValueError("the rollout buffer is empty: collect trajectories before building a batch")
        n, t = len(self.trajectories), max(len(tr.input_ids) for tr in self.trajectories)
        input_ids = np.full((n, t), pad_token_id, dtype=np.int64)
        attention_mask = np.zeros((n, t), dtype=np.int64)
        loss_mask = np.zeros((n, t), dtype=np.float32)
        old_logprobs = np.zeros((n, t), dtype=np.float32)
        turn_index = np.full((n, t), -1, dtype=np.int64)
        for i, tr in enumerate(self.trajectories):
            length = len(tr.input_ids)
            input_ids[i, :length] = tr.input_ids
            attention_mask[i, :length] = 1
            loss_mask[i, :length] = tr.loss_mask
            old_logprobs[i, :length] = tr.logprobs
            turn_index[i, :length] = tr.turn_index
        return Batch(
            input_ids=torch.from_numpy(input_ids),
            attention_mask=torch.from_numpy(attention_mask),
            loss_mask=torch.from_numpy(loss_mask),
            old_logprobs=torch.from_numpy(old_logprobs),
            turn_index=torch.from_numpy(turn_index),
            reward=torch.tensor([tr.reward for tr in self.trajectories], dtype=torch.float32, device="cpu"),
            group_id=torch.tensor([tr.group_id for tr in self.trajectories], dtype=torch.int64, device="cpu"),
            length=torch.tensor([len(tr.input_ids) for tr in self.trajectories], dtype=torch.int64, device="cpu"),
            success=torch.tensor([tr.success for tr in self.trajectories], dtype=torch.bool, device="cpu"),
            truncated=torch.tensor([tr.truncated for tr in self.trajectories], dtype=torch.bool, device="cpu"),
        )

    @staticmethod
    def minibatches(batch: Batch, size: int, generator: torch.Generator | None = None) -> Iterator[Batch]:
        """Shuffled minibatches of at most `size` trajectories, trimmed to their longest sequence."""
        n = len(batch)
        order = torch.randperm(n, generator=generator, device="cpu")
        for start in range(0, n, size):
            mb = batch[order[start : start + size].numpy()]
            longest = int(mb.length.max())
            yield trim_tokens(mb, longest)

    def save(self, path: str | os.PathLike) -> None:
        save_jsonl(self.trajectories, path)


def trim_tokens(batch: Batch, length: int) -> Batch:
    """Cut every [N, T] tensor of the batch to T = length (drops all-padding columns)."""
    out = Batch()
    for key, value in batch.items():
        if isinstance(value, torch.Tensor) and value.dim() == 2:
            out[key] = value[:, :length]
        else:
            out[key] = value
    return out
