"""The policy interface: the collector and the trainer know only this."""

from __future__ import annotations

from abc import ABC, abstractmethod

from idagym.buffer import Trajectory


class Policy(ABC):
    """Turns a batch of ongoing episodes into one action each, recording tokens as it goes.

    `start` opens a trajectory with the system prompt and the first observation (mask 0);
    `act` generates one response per trajectory (mask 1, behaviour log-probs), appends a
    `Turn`, and returns the action (code) taken from each response; `observe` appends the
    environment's reply (mask 0), tokenised once. A policy that hits its context limit marks the
    trajectory `truncated` and the collector ends that episode.
    """

    @abstractmethod
    def start(self, task_id: str, group_id: int, observation: str) -> Trajectory: ...

    @abstractmethod
    def act(self, trajectories: list[Trajectory]) -> list[str]: ...

    @abstractmethod
    def observe(self, trajectory: Trajectory, observation: str) -> None: ...

    def end(self, trajectory: Trajectory) -> None:  # noqa: B027 - optional hook
        """Release per-episode state (e.g. a KV cache) once the episode is over."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Stop what the policy started (e.g. a generation server)."""
