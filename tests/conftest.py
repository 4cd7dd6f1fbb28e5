"""Fixtures shared across test files."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle torch threads must not spin on shared cores


@pytest.fixture(scope="session")
def root() -> str:
    """APPWORLD_ROOT of the task suite (built on first use; `make setup` builds it up front)."""
    from idagym.appworld.tasks import suite_root

    return str(suite_root())


@pytest.fixture(scope="session")
def task_id(root: str) -> str:
    """One AppWorld training task."""
    from idagym.appworld.tasks import load_split

    return load_split("train", root=root)[0]
