"""A plain Gymnasium loop on an idagym environment: `gym.make`, `reset`, `step`, nothing else.

The "agent" here first looks around (one discovery action) and then replays the task's
ground-truth actions, so the loop shows what a perfect episode looks like and what the world's
own tests say about it. Swap `agent_actions` for your own agent.

    .venv/bin/python examples/gym_loop.py                            # idagym/AppWorld-v0, 1 task
    .venv/bin/python examples/gym_loop.py --env idagym/Lookup-v0 --tasks 3
"""

from __future__ import annotations

import argparse
import sys

import gymnasium as gym

import idagym  # noqa: F401  (registers the idagym environments)

# a first look around: AppWorld lists its apps; the small worlds answer a harmless command
DISCOVERY = {"idagym/AppWorld-v0": "print(apis.api_docs.show_app_descriptions())"}


def agent_actions(env: gym.Env, env_id: str, task_id: str) -> list[str]:
    """Discovery first, then the ground truth (asked after reset: some worlds draw it per episode)."""
    first = [DISCOVERY[env_id]] if env_id in DISCOVERY else []
    return first + env.unwrapped.solution(task_id)


def run(env_id: str = "idagym/AppWorld-v0", num_tasks: int = 1, split: str = "train", seed: int = 0) -> list[dict]:
    """Play one episode on each of the first `num_tasks` tasks of `split`; return their last infos
    (with the final `reward` and whether the episode ended, `done`)."""
    env = gym.make(env_id, split=split)
    results = []
    try:
        for task_id in env.unwrapped.task_ids(split)[:num_tasks]:
            obs, info = env.reset(seed=seed, options={"task_id": task_id})
            print(f"=== {task_id}\n{obs[:400]}")
            reward, done = 0.0, False
            for action in agent_actions(env, env_id, task_id):
                obs, reward, terminated, truncated, info = env.step(action)
                print(f"--- action ({len(action)} chars) -> {obs[:200]!r}")
                done = terminated or truncated
                if done:
                    break
            if not done:  # the actions ran out before the task was declared complete
                print("--- episode still open after the ground truth")
            print(f"reward {reward}  {info.get('evaluation', '')}")
            results.append({**info, "reward": reward, "done": done})
    finally:
        env.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A plain Gymnasium loop on an idagym environment")
    parser.add_argument("--env", default="idagym/AppWorld-v0")
    parser.add_argument("--tasks", type=int, default=1)
    parser.add_argument("--split", default="train")
    args = parser.parse_args(argv)
    results = run(args.env, args.tasks, args.split)
    print(f"mean reward {sum(r['reward'] for r in results) / max(len(results), 1):.3f} over {len(results)} tasks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
