"""A run folder: everything one training run writes, crash-safe so that `--resume` can continue it.

  config.yaml          the resolved config (what --resume reads back)
  metrics.jsonl        one line per finished iteration, append-only
  eval.jsonl           one line per evaluation (before / during / after training)
  trajectories.jsonl   every trajectory, tagged with its iteration (info["iteration"])
  checkpoint.pt        latest checkpoint: trainable weights, optimiser, RNG states, next iteration
  tb/                  TensorBoard events
  curves.png           learning curves
  model/               the trained model (LoRA adapter or weights) at the end

A checkpoint is written to a temporary file, fsynced and renamed over the old one, so a SIGKILL at
any moment leaves either the previous or the new checkpoint. On resume, lines of iterations the
checkpoint does not cover are cut from the JSONL files, so no iteration is missing or duplicated.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

CHECKPOINT = "checkpoint.pt"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, write: Callable[[Any], None]) -> None:
    """Write through `write(file)` into a temp file in the same folder, fsync, then os.replace."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    """Append one JSON line, flushed and fsynced (a kill leaves at most a torn last line)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; a torn line (killed mid-write) is skipped."""
    if not path.exists():
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def truncate_jsonl(path: Path, keep: Callable[[dict[str, Any]], bool]) -> int:
    """Rewrite `path` atomically with only the rows `keep` accepts (torn lines dropped); returns rows cut."""
    if not path.exists():
        return 0
    kept, cut = [], 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                cut += 1
                continue
            if keep(row):
                kept.append(line if line.endswith("\n") else line + "\n")
            else:
                cut += 1
    if cut:
        atomic_write_bytes(path, lambda f: f.write("".join(kept).encode()))
    return cut


class Run:
    """One run folder. `Run.create` starts a new one; `Run(path)` opens an existing one."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._tb: Any = None

    @classmethod
    def create(cls, run_dir: str | None, name: str) -> Run:
        """A fresh folder: `run_dir`, or runs/<name>-<time> (refuses a folder that already has a run)."""
        root = Path(run_dir) if run_dir else Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        if (root / CHECKPOINT).exists() or (root / "metrics.jsonl").exists():
            raise FileExistsError(f"{root} already holds a run: continue it with --resume {root}, or pick another train.run_dir")
        return cls(root)

    # ---- paths -----------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def eval_path(self) -> Path:
        return self.root / "eval.jsonl"

    @property
    def trajectories_path(self) -> Path:
        return self.root / "trajectories.jsonl"

    @property
    def checkpoint_path(self) -> Path:
        return self.root / CHECKPOINT

    # ---- writing ----------------------------------------------------------------------------------
    def write_config(self, yaml_text: str) -> None:
        atomic_write_bytes(self.config_path, lambda f: f.write(yaml_text.encode()))

    def tensorboard(self, purge_step: int | None = None) -> Any:
        """A SummaryWriter; `purge_step` drops events at or after it (written by a killed attempt)."""
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.root / "tb"), purge_step=purge_step)
        return self._tb

    def log_metrics(self, row: dict[str, Any]) -> None:
        """Append an iteration's metrics (must hold 'iteration') to metrics.jsonl and TensorBoard."""
        append_jsonl(self.metrics_path, row)
        self._scalars(row, "train")

    def log_eval(self, row: dict[str, Any]) -> None:
        append_jsonl(self.eval_path, row)
        self._scalars(row, "eval")

    def _scalars(self, row: dict[str, Any], prefix: str) -> None:
        tb = self.tensorboard()
        step = int(row["iteration"])
        for key, value in row.items():
            if key != "iteration" and isinstance(value, int | float) and not isinstance(value, bool):
                tb.add_scalar(f"{prefix}/{key}", value, step)
        tb.flush()

    def append_trajectories(self, trajectories: list) -> None:
        """Append trajectories (each tagged with info["iteration"]) to trajectories.jsonl."""
        from idagym.buffer import save_jsonl

        save_jsonl(trajectories, self.trajectories_path)

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """Atomically replace the latest checkpoint with `state` (must hold 'next_iteration')."""
        atomic_write_bytes(self.checkpoint_path, lambda f: torch.save(state, f))

    def load_checkpoint(self) -> dict[str, Any] | None:
        if not self.checkpoint_path.exists():
            return None
        return torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)

    def rewind(self, next_iteration: int) -> None:
        """Cut every record of iterations >= next_iteration (done by an attempt that was killed
        before its checkpoint), and evaluations after them, so resuming repeats them exactly once.
        An evaluation is labelled with the iterations completed before it, and the checkpoint of
        `next_iteration` is written after the evaluation at `next_iteration`: that one stays."""
        truncate_jsonl(self.metrics_path, lambda r: r.get("iteration", 0) < next_iteration)
        truncate_jsonl(self.eval_path, lambda r: r.get("iteration", 0) <= next_iteration or r.get("phase") == "before")
        truncate_jsonl(self.trajectories_path, lambda r: r.get("info", {}).get("iteration", 0) < next_iteration)

    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.metrics_path)

    def evals(self) -> list[dict[str, Any]]:
        return read_jsonl(self.eval_path)

    def plot(self) -> Path | None:
        """curves.png: reward and success per iteration, and evaluation success."""
        rows = self.metrics()
        if not rows:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        its = [r["iteration"] for r in rows]
        for ax, key in zip(axes[:2], ["reward_mean", "success_rate"], strict=True):
            ax.plot(its, [r.get(key) for r in rows], marker=".")
            ax.set_title(key.replace("_", " "))
            ax.set_xlabel("iteration")
        evals = self.evals()
        if evals:
            axes[2].plot([e["iteration"] for e in evals], [e["success_rate"] for e in evals], marker="o")
        axes[2].set_title(f"eval success ({evals[0].get('split', '') if evals else 'none'})")
        axes[2].set_xlabel("iteration")
        fig.tight_layout()
        out = self.root / "curves.png"
        fig.savefig(out, dpi=90)
        plt.close(fig)
        return out

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
