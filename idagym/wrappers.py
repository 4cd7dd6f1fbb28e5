"""Gymnasium wrappers that reshape an idagym text environment for other agents and RL libraries.

- `TruncateObservation`: cap every observation at `max_chars` (head and tail kept, cut marked).
- `ChatHistory`: the observation is the whole conversation so far, as chat messages.
- `ScoredTimeLimit`: a `max_episode_steps` below the env's `max_turns` becomes its turn limit, so
  the episodes it cuts are scored (`register_env` adds it to every registered env).
- `DiscreteActions`: a finite menu of actions as `Discrete(n)` and the text observation as a
  fixed-size float vector, so value-based and policy-gradient libraries (tianshou, SB3, cleanrl)
  can drive a digital environment without knowing it speaks text.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from idagym.core import AnyText, DigitalEnv, truncate_text

Message = dict[str, str]
_WORD = re.compile(r"\w+")


class TruncateObservation(gym.ObservationWrapper[str, str, str], gym.utils.RecordConstructorArgs):
    """Cut each observation (the first one too) to at most `max_chars` characters."""

    def __init__(self, env: gym.Env[str, str], max_chars: int):
        if max_chars < 1:
            raise ValueError(f"max_chars must be >= 1, got {max_chars}")
        gym.utils.RecordConstructorArgs.__init__(self, max_chars=max_chars)
        gym.ObservationWrapper.__init__(self, env)
        self.max_chars = max_chars
        self.observation_space = AnyText(max_length=max_chars)

    def observation(self, observation: str) -> str:
        return truncate_text(observation, self.max_chars)


class ScoredTimeLimit(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Lower the environment's `max_turns` to the `TimeLimit` beneath this wrapper, if that is lower.

    Gymnasium's TimeLimit ends an episode without telling the environment, so it would end with
    reward 0 and no `success`. With the limit as its own turn limit the environment ends the episode
    at that same step and scores it. `gym.make(id, max_episode_steps=k)` puts the TimeLimit beneath
    this wrapper; a TimeLimit applied by hand above the environment cannot be seen (use `max_turns`).
    """

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        limit = env.spec.max_episode_steps if env.spec is not None else None
        base = env.unwrapped
        if limit is not None and isinstance(base, DigitalEnv) and limit < base.max_turns:
            base.max_turns = limit


def chat_space(max_chars: int = AnyText().max_length) -> spaces.Sequence:
    """The space of a conversation: a tuple of {"role": "user"|"assistant", "content": text}.

    A tuple (not a list) because that is what Gymnasium's `Sequence` space holds and checks.
    """
    role = spaces.Text(min_length=4, max_length=9, charset="abcdefghijklmnopqrstuvwxyz")
    return spaces.Sequence(spaces.Dict({"role": role, "content": AnyText(max_chars)}), stack=False)


class ChatHistory(gym.Wrapper[tuple[Message, ...], str, str, str], gym.utils.RecordConstructorArgs):
    """Observations are the conversation so far: the environment speaks as "user", the agent's
    actions are "assistant" turns. Handy for chat-template LLM agents that re-read the history."""

    def __init__(self, env: gym.Env[str, str]):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        self.observation_space = chat_space()
        self._messages: list[Message] = []

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._messages = [{"role": "user", "content": obs}]
        return self._history(), info

    def step(self, action: str):
        obs, reward, terminated, truncated, info = self.env.step(action)
        # a non-string action is still recorded, as its text, so the history shows what was sent
        self._messages += [{"role": "assistant", "content": str(action)}, {"role": "user", "content": obs}]
        return self._history(), reward, terminated, truncated, info

    def _history(self) -> tuple[Message, ...]:
        # fresh dicts every call: a caller may edit what it got without changing later observations
        return tuple(dict(m) for m in self._messages)


MAX_COUNT = 255
FEATURE_MAX = float(np.log1p(MAX_COUNT))


def hashed_bag_of_words(text: str, dim: int) -> np.ndarray:
    """Word counts hashed into `dim` buckets, capped and squashed by log1p: float32 in [0, FEATURE_MAX].

    crc32, not Python's `hash`, so the features are the same in every process (vector envs).
    """
    vec = np.zeros(dim, dtype=np.float32)
    for word in _WORD.findall(text.lower()):
        vec[zlib.crc32(word.encode()) % dim] += 1.0
    return np.log1p(np.minimum(vec, MAX_COUNT))


class DiscreteActions(gym.Wrapper[np.ndarray, np.integer, str, str], gym.utils.RecordConstructorArgs):
    """Drive a text environment with `Discrete(len(actions))` and vector observations.

    Action `i` sends `actions[i]` (a command, a line of code) to the environment. The observation
    is the hashed bag of words of the environment's latest text (`obs_dim` floats), followed, with
    `include_task`, by that of the episode's first observation (the task): a memoryless policy
    (an MLP Q-network) then still knows what it was asked after the task scrolled away.
    The text itself stays available in `info["text"]`.
    """

    def __init__(
        self, env: gym.Env[str, str], actions: Sequence[str], obs_dim: int = 128, include_task: bool = True
    ):
        if not actions or not all(isinstance(a, str) for a in actions):
            raise ValueError("actions must be a non-empty list of strings")
        if obs_dim < 1:
            raise ValueError(f"obs_dim must be >= 1, got {obs_dim}")
        gym.utils.RecordConstructorArgs.__init__(
            self, actions=list(actions), obs_dim=obs_dim, include_task=include_task
        )
        gym.Wrapper.__init__(self, env)
        self.actions = list(actions)
        self.obs_dim = obs_dim
        self.include_task = include_task
        self.action_space = spaces.Discrete(len(self.actions))
        size = obs_dim * (2 if include_task else 1)
        self.observation_space = spaces.Box(0.0, FEATURE_MAX, shape=(size,), dtype=np.float32)
        self._task = np.zeros(obs_dim, dtype=np.float32)

    def encode(self, text: str) -> np.ndarray:
        vec = hashed_bag_of_words(text, self.obs_dim)
        return np.concatenate([vec, self._task]) if self.include_task else vec

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._task = hashed_bag_of_words(obs, self.obs_dim)
        return self.encode(obs), {**info, "text": obs}

    def step(self, action: int | np.integer):
        if not self.action_space.contains(action):
            raise ValueError(f"action must be an int in [0, {len(self.actions)}), got {action!r}")
        obs, reward, terminated, truncated, info = self.env.step(self.actions[int(action)])
        return self.encode(obs), float(reward), terminated, truncated, {**info, "text": obs}
