"""benchmarks/gpu_check.sh cannot rot: its --cpu mode runs the same steps with a tiny model."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_check_runs_in_cpu_mode():
    proc = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--cpu"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PY": sys.executable})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "passed" in proc.stdout and "failed" not in proc.stdout
    assert "bf16 / fp32: generation x" in proc.stdout and '"steps": 8' in proc.stdout
    assert proc.stdout.count("eval (after, 5 iterations)") == 2  # the 2-rank runs, DDP and FSDP2
    assert proc.stdout.rstrip().endswith("gpu_check: done")
