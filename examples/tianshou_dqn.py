"""Train a classic DQN (tianshou 2.x) on an idagym text environment, through `DiscreteActions`.

The wrapper turns a menu of one-word commands into `Discrete(n)` and each text observation into a
hashed bag-of-words vector, so an off-the-shelf MLP Q-network learns to read the memo and then act
on the person it names. Prints the greedy policy's mean return next to a random policy's.

    .venv/bin/python examples/tianshou_dqn.py                      # idagym/Lookup-v0
    .venv/bin/python examples/tianshou_dqn.py --env mybank/Bank-v0  # the custom bank example
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from tianshou.algorithm import DQN
from tianshou.algorithm.modelfree.dqn import DiscreteQLearningPolicy
from tianshou.algorithm.optim import AdamOptimizerFactory
from tianshou.data import Collector, CollectStats, VectorReplayBuffer
from tianshou.env import DummyVectorEnv
from tianshou.trainer import OffPolicyTrainerParams
from tianshou.utils.net.common import Net

import idagym  # noqa: F401  (registers idagym/Lookup-v0)
from idagym.wrappers import DiscreteActions

# the one-word commands each environment understands; the Q-network picks among them
MENUS = {
    "idagym/Lookup-v0": ["read", "alice", "bob", "carol", "dave"],
    "mybank/Bank-v0": ["balance", "inbox", "history", "messages", "alice", "bob", "carol", "dave"],
}


class FixedInfo(gym.Wrapper):
    """Keep the same info keys at every step. tianshou's replay buffer stores info per row: a key
    that appears only at an episode's end (`success`, `evaluation`) leaves NaNs in earlier rows."""

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs, {"turn": info["turn"], "success": False}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {"turn": info["turn"], "success": bool(info.get("success"))}


def make_env(env_id: str, actions: list[str] | None = None) -> gym.Env:
    if env_id.startswith("mybank/"):
        # the example env lives outside the package: importing its module registers it
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        import examples.custom_env.bank_env  # noqa: F401
    return FixedInfo(DiscreteActions(gym.make(env_id), actions or MENUS[env_id], obs_dim=64))


def random_return(env_id: str, episodes: int, seed: int = 0) -> float:
    """Mean return of a uniformly random policy over the same action menu."""
    env = make_env(env_id)
    env.action_space.seed(seed)
    total = 0.0
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        done = False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += reward
            done = terminated or truncated
    return total / episodes


def train(env_id: str, *, epochs: int = 4, steps_per_epoch: int = 1500, seed: int = 0) -> DQN:
    """DQN with a small MLP; epsilon-greedy exploration while training, greedy when tested."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    env = make_env(env_id)
    train_envs = DummyVectorEnv([lambda: make_env(env_id) for _ in range(4)])
    test_envs = DummyVectorEnv([lambda: make_env(env_id) for _ in range(4)])
    train_envs.seed(seed)
    test_envs.seed(seed + 1000)
    net = Net(state_shape=env.observation_space.shape, action_shape=env.action_space.n, hidden_sizes=[64, 64])
    policy = DiscreteQLearningPolicy(
        model=net, action_space=env.action_space, eps_training=0.3, eps_inference=0.0
    )
    # reward comes only at the episode's end, a few turns away: a short horizon (gamma 0.9) is enough
    algorithm = DQN(policy=policy, optim=AdamOptimizerFactory(lr=1e-3), gamma=0.9, target_update_freq=100)
    train_collector = Collector[CollectStats](
        algorithm, train_envs, VectorReplayBuffer(10_000, len(train_envs)), exploration_noise=True
    )
    test_collector = Collector[CollectStats](algorithm, test_envs, exploration_noise=True)
    # warm up the buffer with random play. Not `collect(random=True)`: tianshou's vector envs read
    # spaces from `env.unwrapped`, so it would sample the inner text space, not DiscreteActions'
    policy.set_eps_training(1.0)
    train_collector.reset()
    train_collector.collect(n_step=256)
    policy.set_eps_training(0.3)
    algorithm.run_training(
        OffPolicyTrainerParams(
            training_collector=train_collector,
            test_collector=test_collector,
            max_epochs=epochs,
            epoch_num_steps=steps_per_epoch,
            collection_step_num_env_steps=12,
            test_step_num_episodes=20,
            batch_size=64,
            update_step_num_gradient_steps_per_sample=0.5,
            verbose=False,
            show_progress=False,
        )
    )
    return algorithm


def greedy_return(algorithm: DQN, env_id: str, episodes: int, seed: int = 0) -> float:
    """Mean return of the trained policy acting greedily (epsilon 0)."""
    envs = DummyVectorEnv([lambda: make_env(env_id) for _ in range(4)])
    envs.seed(seed)
    algorithm.policy.eval()
    collector = Collector[CollectStats](algorithm, envs)
    collector.reset()
    stats = collector.collect(n_episode=episodes)
    return float(np.mean(stats.returns))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="idagym/Lookup-v0", choices=sorted(MENUS))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps-per-epoch", type=int, default=1500)
    parser.add_argument("--episodes", type=int, default=200, help="episodes to evaluate each policy on")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    algorithm = train(args.env, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, seed=args.seed)
    trained = greedy_return(algorithm, args.env, args.episodes, seed=args.seed + 1)
    baseline = random_return(args.env, args.episodes, seed=args.seed + 1)
    print(f"{args.env}: trained DQN mean return {trained:.3f}, random policy {baseline:.3f} "
          f"over {args.episodes} episodes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
