"""Gymnasium vector environments over an idagym text environment.

Runs `num_envs` copies of `idagym/Lookup-v0` side by side (in subprocesses with `--mode async`,
in this process with `--mode sync`) and plays a scripted read-then-act policy on the batch.
Observations and actions are tuples of strings, one per copy; finished copies reset themselves
on the next `step` (Gymnasium's default next-step autoreset).

    .venv/bin/python examples/vector_envs.py --mode async --num-envs 4 --episodes 20

Gymnasium's defaults work: `AsyncVectorEnv`'s shared memory carries idagym's text observations
(as code points; `shared_memory=False` sends them through the pipes instead).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import gymnasium as gym
import numpy as np

import idagym  # noqa: F401  (registers idagym/Lookup-v0)


def make_vec(env_id: str, num_envs: int, mode: str = "async") -> gym.vector.VectorEnv:
    """`num_envs` copies of `env_id`; `mode` is "async" (subprocesses) or "sync" (in process)."""
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode)


def lookup_policy(observation: str) -> str:
    """Read the memo first; once it is on screen ("memo says <verb> <name>"), say the name."""
    words = observation.split()
    return words[-1] if observation.startswith("memo says") else "read"


def play(
    envs: gym.vector.VectorEnv, episodes: int, seed: int = 0, policy: Callable[[str], str] = lookup_policy
) -> float:
    """Step all copies with `policy` (text -> text) until `episodes` episodes have ended; return
    their success rate."""
    observations, _ = envs.reset(seed=seed)
    successes: list[bool] = []
    while len(successes) < episodes:
        actions = tuple(policy(obs) for obs in observations)
        observations, _, terminated, truncated, info = envs.step(actions)
        # vector infos are dicts of arrays, with a boolean "_<key>" mask of the copies that set the key
        has_success = info.get("_success", np.zeros(envs.num_envs, dtype=bool))
        for i in np.flatnonzero(terminated | truncated):
            successes.append(bool(has_success[i] and info["success"][i]))
    return float(np.mean(successes[:episodes]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Gymnasium vector envs over idagym/Lookup-v0")
    parser.add_argument("--mode", choices=["async", "sync"], default="async")
    parser.add_argument("--num-envs", type=int, default=4)
    parser.add_argument("--episodes", type=int, default=20)
    args = parser.parse_args(argv)
    envs = make_vec("idagym/Lookup-v0", args.num_envs, args.mode)
    try:
        rate = play(envs, args.episodes)
    finally:
        envs.close()
    print(f"{args.mode} x{args.num_envs}: scripted read-then-act success {rate:.2f} over {args.episodes} episodes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
