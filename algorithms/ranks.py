"""Data-parallel ranks through accelerate (torch DDP underneath); one process is the identity.

Launched by `accelerate launch` (or `idagym train --num-processes N`), every rank runs the same
trainer: it collects its own whole task groups, computes their advantages, and the loss pass goes
through accelerate's DDP wrapper, which averages the gradients. Whatever decides control flow
(skipping a minibatch, stopping early, the number of minibatches) is agreed on by all ranks, since
one rank stepping alone would wait forever in the all-reduce.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from typing import Any, NoReturn

import torch
from torch import nn

# how long a rank waits for the others at a collective: longer than the slowest collection or evaluation
COLLECTIVE_TIMEOUT_S = int(os.environ.get("IDAGYM_COLLECTIVE_TIMEOUT_S", "3600"))


def world_size() -> int:
    """Processes of this run (WORLD_SIZE, set by the launcher; 1 when launched plainly)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def end_rank_process(code: int) -> NoReturn:
    """A rank's last step: exit without interpreter teardown, which can deadlock (destroying the
    gloo process group joins its worker thread while holding the GIL that thread is waiting for)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def check_same_world(state: dict[str, Any], world: int) -> None:
    """A checkpoint resumes only with the number of processes that wrote it (ValueError otherwise)."""
    saved = int(state.get("world_size", 1))
    if saved != world:
        raise ValueError(f"this run was trained with {saved} process(es): resume it with --num-processes {saved}, not {world}")


class Ranks:
    """This process's place among the run's ranks, and the collectives the trainer needs."""

    def __init__(self, device: torch.device):
        self.world, self.rank, self.accelerator = world_size(), 0, None
        if self.world > 1:
            from accelerate import Accelerator
            from accelerate.utils import InitProcessGroupKwargs

            timeout = InitProcessGroupKwargs(timeout=timedelta(seconds=COLLECTIVE_TIMEOUT_S))
            self.accelerator = Accelerator(cpu=device.type == "cpu", kwargs_handlers=[timeout])
            self.rank = self.accelerator.process_index

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """Each rank's own GPU when the run is on CUDA."""
        return self.accelerator.device if self.accelerator is not None and device.type == "cuda" else device

    def shard(self, items: list[Any]) -> list[Any]:
        """This rank's share of `items` (every world-th one, from its rank)."""
        return items[self.rank :: self.world]

    def gather(self, items: list[Any]) -> list[Any]:
        """Every rank's `items`, concatenated in rank order, on every rank."""
        if self.accelerator is None:
            return items
        from accelerate.utils import gather_object

        return gather_object(items)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank."""
        if self.accelerator is None:
            return obj
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([obj])[0]

    def reduce(self, value: float, op: str = "mean") -> float:
        """`value` combined over ranks: 'mean', 'nanmean' (ranks without a value give nan), 'max' or 'sum'."""
        if self.accelerator is None:
            return value
        t = torch.tensor([float(value)], dtype=torch.float64, device=self.accelerator.device)
        all_values = self.accelerator.gather(t)
        return float({"mean": all_values.mean, "nanmean": all_values.nanmean, "max": all_values.max,
                      "sum": all_values.sum}[op]())

    def close(self) -> None:
        """Wait for every rank, then leave the process group (exiting with it still up can abort the
        process: its background threads are torn down unjoined)."""
        if self.accelerator is not None and torch.distributed.is_initialized():
            self.accelerator.wait_for_everyone()
            torch.distributed.destroy_process_group()

    def wrap(self, module: nn.Module) -> nn.Module:
        """The module the loss pass runs through (DDP with more than one rank)."""
        return self.accelerator.prepare_model(module, device_placement=False) if self.accelerator is not None else module
