"""The base class every idagym environment shares, and the one call that registers a new one.

A *digital environment* is a stateful world the agent acts on by sending text actions (code,
commands); it sees only what its actions print (partial observability) and is scored at the end
by the world's own tests. Subclasses implement five small hooks; `reset`/`step` are shared, so
every environment behaves identically towards collectors, wrappers and trainers.
"""

from __future__ import annotations

import multiprocessing
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import create_shared_memory, read_from_shared_memory, write_to_shared_memory

MAX_TEXT_LENGTH = 1_000_000


class AnyText(spaces.Text):
    """A Text space that accepts any Unicode string up to `max_length` characters.

    Gymnasium's Text rejects characters outside its charset, but agents' code and the
    environment's output are arbitrary Unicode.
    """

    def __init__(self, max_length: int = MAX_TEXT_LENGTH, *, min_length: int = 0, seed: Any = None):
        super().__init__(max_length=max_length, min_length=min_length, seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"AnyText({self.min_length}, {self.max_length})"


# AsyncVectorEnv's shared memory (its default) stores Text as charset indices, which fails on any other
# character, and reads the buffer only once, at construction. For AnyText each copy gets a row of
# code points led by the length, and observations are decoded from it each time they are returned.
@create_shared_memory.register(AnyText)
def _create_text_memory(space: AnyText, n: int = 1, ctx: Any = multiprocessing) -> Any:
    return ctx.Array("i", n * (space.max_length + 1))


@read_from_shared_memory.register(AnyText)
def _read_text_memory(space: AnyText, shared_memory: Any, n: int = 1) -> SharedText:
    return SharedText(np.frombuffer(shared_memory.get_obj(), dtype=np.int32).reshape(n, space.max_length + 1))


@write_to_shared_memory.register(AnyText)
def _write_text_memory(space: AnyText, index: int, value: str, shared_memory: Any) -> None:
    codes = np.frombuffer(value.encode("utf-32-le", "surrogatepass"), dtype=np.int32)
    if len(codes) > space.max_length:
        raise ValueError(f"observation of {len(codes)} characters exceeds the space's max_length {space.max_length}")
    row = np.frombuffer(shared_memory.get_obj(), dtype=np.int32)[index * (space.max_length + 1) :]
    row[0] = len(codes)
    row[1 : 1 + len(codes)] = codes


class SharedText(Sequence[str]):
    """The copies' observations in AsyncVectorEnv's shared memory, read afresh on each access.

    AsyncVectorEnv returns a deep copy of it (a plain tuple of str) unless made with `copy=False`.
    """

    def __init__(self, rows: np.ndarray):
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return tuple(self)[i]
        row = self._rows[i]
        return row[1 : 1 + row[0]].tobytes().decode("utf-32-le", "surrogatepass")

    def __deepcopy__(self, memo: dict) -> tuple[str, ...]:
        return tuple(self)

    def __repr__(self) -> str:
        return f"SharedText{tuple(self)!r}"


@dataclass
class Evaluation:
    """The world's verdict on an episode: which of the task's tests passed."""

    pass_count: int
    num_tests: int
    passes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return self.num_tests > 0 and self.pass_count == self.num_tests

    @property
    def fraction(self) -> float:
        return self.pass_count / self.num_tests if self.num_tests else 0.0

    def report(self) -> str:
        lines = [f"{self.pass_count}/{self.num_tests} tests passed"]
        lines += [f"  PASS {p}" for p in self.passes]
        lines += [f"  FAIL {f}" for f in self.failures]
        return "\n".join(lines)


class UnsupportedRenderMode(ValueError, TypeError):
    """A render_mode the environment does not have. Also a TypeError because that is what
    Stable-Baselines3's `make_vec_env` catches to retry without its `render_mode="rgb_array"`."""


class EnvFailure(RuntimeError):
    """The world could not run an action (worker hung, crashed, ran out of memory).

    `step` turns it into a truncated episode with `info["error"]`; the next `reset` works.
    """


def truncate_text(text: str, max_chars: int) -> str:
    """Cut `text` to `max_chars`, keeping head and tail, with a marker saying what was cut."""
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    marker = f"\n... [output truncated: {len(text) - max_chars} of {len(text)} characters cut] ...\n"
    if len(marker) >= max_chars:  # no room for the marker: a plain cut still honours max_chars
        return text[:max_chars]
    keep = max_chars - len(marker)
    head = keep * 2 // 3
    return text[:head] + marker + text[len(text) - (keep - head) :]


class DigitalEnv(gym.Env[str, str]):
    """A text environment over a stateful digital world, with episode-end rewards in [0, 1].

    Subclasses implement the hooks below; `reset` and `step` follow Gymnasium exactly:
    the reward is 0 on intermediate steps and the world's test pass fraction (or binary success)
    at the end; `terminated` when the agent declares the task complete, `truncated` at the turn
    limit or when the world failed (`info["error"]`). `info` always has `task_id` and `turn`, and
    at the end `success`, `pass_count`, `num_tests`.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        *,
        split: str = "train",
        max_turns: int = 20,
        max_obs_chars: int = 8_000,
        reward_mode: str = "fraction",
        render_mode: str | None = None,
    ):
        if reward_mode not in ("fraction", "binary"):
            raise ValueError(f"reward_mode must be 'fraction' or 'binary', got {reward_mode!r}")
        if max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, got {max_turns}")
        if missing := missing_hooks(type(self)):
            raise TypeError(f"{type(self).__name__} does not implement {', '.join(missing)}: add these methods")
        if render_mode not in (None, "ansi"):
            raise UnsupportedRenderMode(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.split = split
        self.max_turns = max_turns
        self.max_obs_chars = max_obs_chars
        self.reward_mode = reward_mode
        self.render_mode = render_mode
        self.observation_space = AnyText()
        self.action_space = AnyText()
        self.task_id: str | None = None
        self.turn = 0
        self._done = True
        self._last_obs = ""

    # ---- hooks a new environment implements -------------------------------------------------
    @abstractmethod
    def task_ids(self, split: str) -> list[str]:
        """The task ids of a split."""

    @abstractmethod
    def open_task(self, task_id: str, seed: int | None) -> str:
        """Start a fresh episode of `task_id`; return the first observation (the task, the rules)."""

    @abstractmethod
    def execute(self, action: str) -> str:
        """Run one action in the world; return what it printed. Raise EnvFailure if the world failed."""

    @abstractmethod
    def task_completed(self) -> bool:
        """Whether the agent declared the task done."""

    @abstractmethod
    def evaluate(self) -> Evaluation:
        """Score the episode with the world's own tests."""

    def describe_apis(self) -> str:
        """A short description of the actions/APIs the agent can use (for prompts and `idagym envs`)."""
        return ""

    def close_task(self) -> None:
        """Release what `open_task` acquired (called before the next task and on close)."""

    def solution(self, task_id: str) -> list[str]:
        """Ground-truth actions that solve `task_id` (used by the scripted agent to test the env)."""
        raise NotImplementedError(f"{type(self).__name__} has no ground-truth solutions")

    def duplicated_task_ids(self, split: str) -> set[str]:
        """Tasks of `split` that repeat a task of another split (same template and parameters).
        Trainers leave them out, so that no held-out task is trained on."""
        return set()

    def task_difficulty(self, task_id: str) -> int | None:
        """The task's difficulty level where the env grades its tasks (AppWorld: 1-3), else None;
        evaluations report success per level."""
        return None

    def task_template(self, task_id: str) -> str | None:
        """The template (family) `task_id` was made from, where the env has such families, else None;
        trajectories record it and `idagym show` filters by it."""
        return None

    def vocabulary(self) -> list[str] | None:
        """For small synthetic worlds: every word the env and a good agent use (a word-level tokenizer
        is built from it). None for open-ended worlds such as AppWorld."""
        return None

    # ---- the shared Gymnasium API ------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict]:
        super().reset(seed=seed)
        options = options or {}
        task_id = options.get("task_id")
        if task_id is None:
            split = options.get("split", self.split)
            ids = self.task_ids(split)
            if not ids:
                raise ValueError(f"split {split!r} of {type(self).__name__} has no tasks")
            task_id = ids[int(self.np_random.integers(len(ids)))]
        if self.task_id is not None:
            self.close_task()
        self.task_id, self.turn, self._done = task_id, 0, False
        task_seed = None if seed is None else int(seed)
        obs = self._check_obs(self.open_task(task_id, task_seed), "open_task")
        self._last_obs = obs
        return obs, {"task_id": task_id, "turn": 0}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        if self._done:
            raise RuntimeError("step() called on a finished episode: call reset() first")
        self.turn += 1
        info: dict[str, Any] = {"task_id": self.task_id, "turn": self.turn}
        try:
            if not isinstance(action, str):
                obs = f"Error: the action must be a string of code, got {type(action).__name__}."
            else:
                obs = self._check_obs(self.execute(action), "execute")
            terminated = self.task_completed()
        except EnvFailure as err:
            obs, terminated, info["error"] = f"Environment error: {err}", False, str(err)
        truncated = not terminated and ("error" in info or self.turn >= self.max_turns)
        reward = 0.0
        if terminated or truncated:
            self._done = True
            reward = self._final_reward(info)
        self._last_obs = truncate_text(obs, self.max_obs_chars)
        return self._last_obs, reward, terminated, truncated, info

    def render(self) -> str | None:
        if self.render_mode == "ansi":
            return f"[{self.task_id} turn {self.turn}]\n{self._last_obs}"
        return None

    def close(self) -> None:
        if self.task_id is not None:
            self.close_task()
            self.task_id = None
        super().close()

    def _final_reward(self, info: dict) -> float:
        try:
            ev = self.evaluate()
        except EnvFailure as err:
            info.setdefault("error", str(err))
            ev = Evaluation(0, 0)
        if not isinstance(ev, Evaluation):
            raise TypeError(f"{type(self).__name__}.evaluate() must return idagym.Evaluation, got {type(ev).__name__}")
        reward = float(ev.success) if self.reward_mode == "binary" else ev.fraction
        if not 0.0 <= reward <= 1.0:
            raise ValueError(f"{type(self).__name__}.evaluate() gave reward {reward} outside [0, 1]: pass_count must be <= num_tests")
        info.update(success=ev.success, pass_count=ev.pass_count, num_tests=ev.num_tests, evaluation=ev.report())
        return reward

    def _check_obs(self, obs: Any, hook: str) -> str:
        if not isinstance(obs, str):
            raise TypeError(f"{type(self).__name__}.{hook}() must return a str observation, got {type(obs).__name__}")
        return obs


REQUIRED_HOOKS = ("task_ids", "open_task", "execute", "task_completed", "evaluate")


def missing_hooks(cls: type) -> list[str]:
    """Required hooks that `cls` leaves unimplemented (gym.Env is no ABC, so check by hand)."""
    return [name for name in REQUIRED_HOOKS if getattr(cls, name) is getattr(DigitalEnv, name)]


def register_env(env_id: str, entry_point: type[DigitalEnv] | str, **kwargs: Any) -> None:
    """Register a digital environment under the Gymnasium registry (`gymnasium.make(env_id)`).

    Checks what can be checked up front: the class subclasses DigitalEnv and implements every
    hook, and the id is not taken. `kwargs` become the environment's default constructor args.
    `gymnasium.make(env_id, max_episode_steps=k)` with k below `max_turns` ends episodes scored
    at step k (see `idagym.wrappers.ScoredTimeLimit`).
    """
    if env_id in gym.registry:
        raise ValueError(f"environment id {env_id!r} is already registered: pick another id or version (-v1)")
    if isinstance(entry_point, type):
        if not issubclass(entry_point, DigitalEnv):
            raise TypeError(f"{entry_point.__name__} must subclass idagym.DigitalEnv to be registered with idagym")
        if missing := missing_hooks(entry_point):
            raise TypeError(f"{entry_point.__name__} does not implement {', '.join(missing)}: add these methods")
    scored_limit = gym.envs.registration.WrapperSpec("ScoredTimeLimit", "idagym.wrappers:ScoredTimeLimit", {})
    gym.register(id=env_id, entry_point=entry_point, kwargs=kwargs, additional_wrappers=(scored_limit,))


def idagym_env_ids() -> list[str]:
    """Ids of registered environments built on DigitalEnv."""
    ids = []
    for env_id, spec in gym.registry.items():
        ep = spec.entry_point
        if isinstance(ep, str):
            try:
                ep = gym.envs.registration.load_env_creator(ep)
            except Exception:  # an unrelated env whose module is not installed
                continue
        if isinstance(ep, type) and issubclass(ep, DigitalEnv):
            ids.append(env_id)
    return sorted(ids)
