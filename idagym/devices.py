"""Which device and precision a run uses: `train.device` (auto | cpu | cuda | cuda:N) and `model.dtype`.

Everything else follows the model: the policy, the trainer, the critic and the evaluation put
their tensors on `next(model.parameters()).device`, so no code path names a device of its own.
"""

from __future__ import annotations

import torch

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(spec: str) -> torch.device:
    """The torch device `spec` names; 'auto' is CUDA when present. Raises ValueError (one line)."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kind, _, index = spec.partition(":")
    if kind not in ("cpu", "cuda") or (index and (kind == "cpu" or not index.isdigit())):
        raise ValueError(f"device={spec!r} is not one of {DEVICE_CHOICES}")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={spec!r} but this machine has no CUDA device (torch {torch.__version__}); "
                             "use device=cpu or device=auto")
        if index and int(index) >= torch.cuda.device_count():
            raise ValueError(f"device={spec!r} but only {torch.cuda.device_count()} CUDA device(s) are visible")
    return torch.device(spec)


def check_dtype(device: torch.device, dtype: str) -> None:
    """Refuse a weight dtype the device cannot compute in. Raises ValueError (one line)."""
    if device.type == "cuda" and dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"model.dtype=bfloat16 but {torch.cuda.get_device_name(device)} has no bfloat16 support; "
                         "use model.dtype=float16 or float32")
