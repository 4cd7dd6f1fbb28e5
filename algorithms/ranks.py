"""Data-parallel ranks through accelerate (torch DDP or FSDP2 underneath); one process is the identity.

Launched by `accelerate launch` (or `idagym train --num-processes N`), every rank runs the same
trainer: it collects its own whole task groups, computes their advantages, and the loss pass goes
through accelerate's DDP wrapper, which averages the gradients. Whatever decides control flow
(skipping a minibatch, stopping early, the number of minibatches) is agreed on by all ranks, since
one rank stepping alone would wait forever in the all-reduce.

With `train.sharding=fsdp2` the policy's weights, gradients and optimiser state are sharded across
the ranks by torch FSDP2 (`fully_shard`, one unit per decoder layer) for the loss pass. Generation
and the no-grad passes run inside `full_weights()`, which gathers the whole weights once: each rank
generates a different number of tokens, and FSDP2's per-forward all-gather would make every rank
wait on every other's decoding steps (or hang when one rank has finished).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, NoReturn

import torch
from torch import nn

# how long a rank waits for the others at a collective: longer than the slowest collection or evaluation
COLLECTIVE_TIMEOUT_S = int(os.environ.get("IDAGYM_COLLECTIVE_TIMEOUT_S", "3600"))


def world_size() -> int:
    """Processes of this run (WORLD_SIZE, set by the launcher; 1 when launched plainly)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launch_command(n: int) -> list[str]:
    """`accelerate launch` of `n` ranks on this machine, up to the program to run; a free rendezvous
    port, so that two runs on one machine do not collide."""
    from idagym.net import free_port

    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_machines", "1",
            "--num_processes", str(n), "--main_process_port", str(free_port()),
            "--mixed_precision", "no", "--dynamo_backend", "no"]


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

    def __init__(self, device: torch.device, sharding: str = "none"):
        self.world, self.rank, self.accelerator = world_size(), 0, None
        if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
            raise ValueError("accelerate's FSDP settings cannot gather the weights for generation: launch with "
                             "examples/accelerate/ddp.yaml and set train.sharding=fsdp2")
        # one process has nothing to shard across
        self.sharded = sharding == "fsdp2" and self.world > 1
        self._gathered = False
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

    def wrap(self, module: nn.Module, shard: bool = False) -> nn.Module:
        """The module the loss pass runs through: DDP with more than one rank, or, with `shard` and
        sharding on, the module itself, sharded in place by FSDP2."""
        if self.sharded and shard:
            return self._fully_shard(module)
        return self.accelerator.prepare_model(module, device_placement=False) if self.accelerator is not None else module

    def _fully_shard(self, model: nn.Module) -> nn.Module:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh(self.accelerator.device.type, (self.world,))
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        blocks = set(getattr(base, "_no_split_modules", None) or [])  # the decoder layer class(es)
        for module in model.modules():
            if type(module).__name__ in blocks:
                fully_shard(module, mesh=mesh)
        fully_shard(model, mesh=mesh)  # the rest: embeddings (tied to the head), final norm
        return model

    @contextlib.contextmanager
    def full_weights(self, model: nn.Module) -> Iterator[None]:
        """Whole weights on every rank inside the block (generation, no-grad scoring); with sharding
        on they are gathered once on entry and freed on exit. Every rank enters together."""
        if not self.sharded or self._gathered:
            yield
            return
        from torch.distributed.fsdp import FSDPModule

        units = [m for m in model.modules() if isinstance(m, FSDPModule)]
        for unit in units:
            unit.unshard()
            unit.set_reshard_after_forward(False, recurse=False)  # forwards inside use the gathered weights
        self._gathered = True
        try:
            yield
        finally:
            self._gathered = False
            for unit in units:
                unit.set_reshard_after_forward(True, recurse=False)
                unit.reshard()

    def full_state_dict(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """`module`'s whole state dict. Sharded, every rank must call it and the gathered weights land
        on rank 0's host alone (the other ranks get an empty dict)."""
        if not self.sharded:
            return module.state_dict()
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))

    def load_full_state_dict(self, module: nn.Module, weights: dict[str, torch.Tensor], strict: bool = True) -> None:
        """Load a whole state dict (as `full_state_dict` gives) into `module`, sharded or not."""
        if not self.sharded:
            module.load_state_dict(weights, strict=strict)
            return
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        set_model_state_dict(module, weights, options=StateDictOptions(full_state_dict=True, strict=strict))
