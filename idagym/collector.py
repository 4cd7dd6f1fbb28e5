"""Roll out a policy on many environment instances at once.

`Collector.collect(task_ids, group_size=K, seed=...)` runs K episodes per task (one group id per
task), at most `num_envs` at a time. Each round, one batched `policy.act` answers every live
episode, then the envs step in parallel threads (an AppWorld env's world lives in its own worker
process, so threads only wait on pipes; pure-Python envs are stepped inline). Env failures and
context limits end an episode truncated, with the error recorded; they never stop collection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
from tqdm.auto import tqdm

from idagym.agents.base import Policy
from idagym.buffer import Trajectory


@dataclass
class _Slot:
    env: gym.Env
    traj: Trajectory | None = None


def episode_seed(seed: int, task_id: str, sample: int) -> int:
    """The env reset seed of one episode: stable across runs, distinct per task and sample."""
    digest = hashlib.sha256(f"{seed}|{task_id}|{sample}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


class Collector:
    """Runs `policy` on `num_envs` instances of an environment (a registered id or a factory)."""

    def __init__(
        self,
        env: str | Callable[[], gym.Env],
        policy: Policy | None = None,
        num_envs: int = 4,
        env_kwargs: dict[str, Any] | None = None,
        *,
        progress: bool = True,
        threads: bool | None = None,
    ):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        make = (lambda: gym.make(env, **(env_kwargs or {}))) if isinstance(env, str) else env
        self.envs = [make() for _ in range(num_envs)]
        self.policy = policy
        self.progress = progress
        # threads help only when stepping waits on another process (AppWorld workers or servers)
        use_threads = num_envs > 1 and (threads if threads is not None else _steps_out_of_process(self.envs[0]))
        self._pool = ThreadPoolExecutor(num_envs) if use_threads else None

    def task_ids(self, split: str) -> list[str]:
        """The task ids of a split, as the environment defines them."""
        return self.envs[0].unwrapped.task_ids(split)

    def collect(self, task_ids: Sequence[str], group_size: int = 1, seed: int = 0,
                policy: Policy | None = None) -> list[Trajectory]:
        """K = group_size episodes per task, in task order; group_id = the task's index here.
        `policy` replaces the collector's own for this call (e.g. a demonstrating policy)."""
        own = self.policy
        self.policy = policy or own
        try:
            return self._collect(task_ids, group_size, seed)
        finally:
            self.policy = own

    def _collect(self, task_ids: Sequence[str], group_size: int, seed: int) -> list[Trajectory]:
        if self.policy is None:
            raise ValueError("the collector has no policy: pass one to Collector(...) or set .policy")
        if hasattr(self.policy, "set_seed"):
            self.policy.set_seed(seed)
        queue = [(task, gid, k) for gid, task in enumerate(task_ids) for k in range(group_size)]
        results: list[Trajectory | None] = [None] * len(queue)
        slots = [_Slot(env) for env in self.envs]
        index = {job: i for i, job in enumerate(queue)}
        bar = tqdm(total=len(queue), desc="episodes", disable=not self.progress, leave=False)
        next_job = 0
        try:
            while next_job < len(queue) or any(s.traj is not None for s in slots):
                # fill free slots with new episodes (resets in parallel, starts in job order)
                free = [s for s in slots if s.traj is None]
                starts = []
                while free and next_job < len(queue):
                    starts.append((free.pop(0), queue[next_job], seed))
                    next_job += 1
                for (slot, job, _), reset in zip(starts, self._map(self._reset, starts), strict=True):
                    traj = self._start(job, reset)
                    results[index[job]] = traj
                    slot.traj = traj
                    if traj.done:
                        self._finish(slot, bar)
                live = [s for s in slots if s.traj is not None]
                if not live:
                    continue
                actions = self.policy.act([s.traj for s in live])
                stepping = []
                for slot, action in zip(live, actions, strict=True):
                    if slot.traj.done:  # the policy ran out of context
                        self._finish(slot, bar)
                    else:
                        stepping.append((slot, action))
                for (slot, _), outcome in zip(stepping, self._map(self._step, stepping), strict=True):
                    self._record(slot.traj, outcome)
                    if slot.traj.done:
                        self._finish(slot, bar)
        finally:
            bar.close()
        return [r for r in results if r is not None]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        for env in self.envs:
            env.close()

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals ----------------------------------------------------------------------------
    def _map(self, fn: Callable, items: list[tuple]) -> list:
        if self._pool is None or len(items) < 2:
            return [fn(*item) for item in items]
        return list(self._pool.map(lambda item: fn(*item), items))

    @staticmethod
    def _reset(slot: _Slot, job: tuple[str, int, int], seed: int) -> tuple[str, dict] | Exception:
        task_id, _, sample = job
        try:
            return slot.env.reset(seed=episode_seed(seed, task_id, sample), options={"task_id": task_id})
        except Exception as err:  # a broken world: recorded, collection goes on
            return err

    def _start(self, job: tuple[str, int, int], reset: tuple[str, dict] | Exception) -> Trajectory:
        task_id, group_id, _ = job
        if isinstance(reset, Exception):
            return Trajectory(task_id=task_id, group_id=group_id, truncated=True, error=f"reset failed: {reset!r}")
        return self.policy.start(task_id, group_id, reset[0])

    @staticmethod
    def _step(slot: _Slot, action: str) -> tuple | Exception:
        try:
            return slot.env.step(action)
        except Exception as err:
            return err

    def _record(self, traj: Trajectory, outcome: tuple | Exception) -> None:
        if isinstance(outcome, Exception):
            traj.truncated, traj.error = True, f"step failed: {outcome!r}"
            return
        obs, reward, terminated, truncated, info = outcome
        if terminated or truncated:
            traj.reward, traj.terminated, traj.truncated = float(reward), bool(terminated), bool(truncated)
            traj.success = bool(info.get("success", False))
            traj.error = info.get("error")
            traj.info = {k: info[k] for k in ("turn", "pass_count", "num_tests") if k in info}
            traj.info["last_output"] = obs  # what the last action printed (behaviour figures read it)
        else:
            self.policy.observe(traj, obs)  # may mark it truncated (context limit)

    def _finish(self, slot: _Slot, bar: tqdm) -> None:
        traj = slot.traj
        self.policy.end(traj)
        traj.info.setdefault("turn", len(traj.turns))
        template = getattr(slot.env.unwrapped, "task_template", lambda _: None)(traj.task_id)
        if template is not None:
            traj.info["template"] = template
        slot.traj = None
        bar.update(1)


def _steps_out_of_process(env: gym.Env) -> bool:
    """Whether the env waits on another process when stepping (then threads overlap the waits)."""
    base = env.unwrapped
    return type(base).__name__ == "AppWorldEnv" or bool(getattr(base, "remote_url", None))
