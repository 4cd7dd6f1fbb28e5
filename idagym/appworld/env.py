"""TRUSTED SIDE: AppWorld as a text Gymnasium environment (the user's process).

The agent writes Python that calls the apps' APIs. Each environment owns one worker process
(`idagym.appworld.worker`), or with `remote_url` a session on an idagym environment server
(`idagym serve`); the worker forks a fresh sandbox and apps process for every episode.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from idagym.appworld.worker import WorkerProcess
from idagym.core import DigitalEnv, EnvFailure, Evaluation

RULES = """\
You act on the supervisor's behalf. Each action you send is Python code, run in a persistent
Python shell (like a notebook cell); you see only what your code prints.
The apps are reached through the `apis` object:
- apis.api_docs.show_app_descriptions() lists the apps;
- apis.api_docs.show_api_descriptions(app_name="...") lists an app's APIs;
- apis.api_docs.show_api_doc(app_name="...", api_name="...") shows how to call one.
Call an API as apis.<app_name>.<api_name>(...). Log in to an app with the supervisor's account
(passwords: apis.supervisor.show_account_passwords()) and pass the access token it returns.
When the task is done, call apis.supervisor.complete_task(); if the task asks a question, give the
answer as apis.supervisor.complete_task(answer=...)."""

# Seconds the environment waits for its worker beyond the worker's own limits (killing a sandbox,
# reporting back) before it declares the worker itself lost.
WORKER_GRACE_S = 10.0

API_SUMMARY = (
    "Python code calling AppWorld's app APIs (apis.<app>.<api>(...)); discover them with "
    "apis.api_docs.show_app_descriptions / show_api_descriptions / show_api_doc; finish with "
    "apis.supervisor.complete_task(answer=...)."
)


class _RemoteWorld:
    """Talks to an idagym environment server (`idagym serve`) over HTTP: the same commands as
    WorkerProcess, run there by a worker of its own. Needs no AppWorld import here."""

    def __init__(self, url: str, config: dict[str, Any]):
        self.url = url.rstrip("/")
        self.config = config
        self.session = uuid.uuid4().hex

    def call(self, command: str, arg: Any = None, *, timeout_s: float) -> Any:
        payload = {"session": self.session, "command": command, "arg": arg, "config": self.config}
        request = urllib.request.Request(
            f"{self.url}/call", data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")[:500]
            raise EnvFailure(f"environment server {command} failed with HTTP {err.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise EnvFailure(f"environment server at {self.url} did not answer {command}: {reason}") from None
        if "error" in answer:
            raise EnvFailure(str(answer["error"]))
        return answer["value"]

    def kill(self) -> None:
        try:
            self.call("exit", timeout_s=5.0)
        except EnvFailure:
            pass


class AppWorldEnv(DigitalEnv):
    """AppWorld tasks as a Gymnasium `Env[str, str]`: observation and action are text.

    Args:
        split: the split tasks are sampled from on `reset()` without `options["task_id"]`.
        max_turns: steps before the episode is truncated.
        max_obs_chars: step outputs are cut to this many characters (head and tail kept).
        reward_mode: "fraction" (share of the task's tests passed) or "binary" (1 only if all pass).
        step_timeout_s: wall-clock limit of one step; past it the worker is killed and the episode
            ends truncated with `info["error"]`.
        appworld_timeout_s: AppWorld's own execution timeout (SIGALRM, whole seconds), which turns
            a runaway cell into an error observation without losing the world. Defaults to just
            under `step_timeout_s`.
        memory_limit_mb: address-space limit of the worker process (0: none).
        remote_url: URL of an AppWorld environment server (`idagym serve`); None runs locally.
        experiment_name: AppWorld output folder prefix; every env instance adds a unique suffix
            so parallel envs on the same task never share an output folder.
        unique_outputs: False uses `experiment_name` as it is, so that several envs write one
            AppWorld experiment (`experiments/outputs/<name>/tasks/<task_id>/`, what AppWorld's own
            `appworld evaluate` reads); then no two envs may run the same task at once.
        root: the APPWORLD_ROOT to use; default `idagym.appworld.tasks.suite_root()` (real data under
            $APPWORLD_ROOT when present, otherwise the built-in offline suite).
        keep_outputs: keep AppWorld's per-task output folders (logs, databases) after `close()`.
        worked_example: end the first observation with a solved example: the instruction and the
            ground-truth code of a train task (the first of the train split, or the second when it
            is the task at hand). Only train tasks are ever shown; it lengthens every prompt.
    """

    def __init__(
        self,
        *,
        split: str = "train",
        max_turns: int = 40,
        max_obs_chars: int = 8_000,
        reward_mode: str = "fraction",
        step_timeout_s: float = 60.0,
        appworld_timeout_s: int | None = None,
        memory_limit_mb: int = 4096,
        remote_url: str | None = None,
        experiment_name: str = "idagym",
        unique_outputs: bool = True,
        root: str | os.PathLike | None = None,
        keep_outputs: bool = False,
        worked_example: bool = False,
        render_mode: str | None = None,
    ):
        super().__init__(
            split=split, max_turns=max_turns, max_obs_chars=max_obs_chars, reward_mode=reward_mode, render_mode=render_mode
        )
        if step_timeout_s <= 0:
            raise ValueError(f"step_timeout_s must be > 0, got {step_timeout_s}")
        if appworld_timeout_s is None:
            appworld_timeout_s = max(1, int(step_timeout_s * 0.8))
        if appworld_timeout_s < 1:
            raise ValueError(f"appworld_timeout_s must be >= 1 (AppWorld uses whole-second alarms), got {appworld_timeout_s}")
        self.step_timeout_s = float(step_timeout_s)
        self.remote_url = remote_url
        self.keep_outputs = keep_outputs
        self.worked_example = worked_example
        self.memory_limit_mb = memory_limit_mb
        self._root = None if root is None else str(Path(root).resolve())
        self.experiment_name = f"{experiment_name}/{uuid.uuid4().hex[:12]}" if unique_outputs else experiment_name
        self.appworld_kwargs: dict[str, Any] = {
            "experiment_name": self.experiment_name,
            "timeout_seconds": int(appworld_timeout_s),
            "max_interactions": max_turns + 10,
        }
        self.isolation: str | None = None  # how the last episode's sandbox was confined
        self._world: WorkerProcess | _RemoteWorld | None = None
        self._completed = False
        self._failed: str | None = None
        self._splits: dict[str, list[str]] = {}

    # ---- data -------------------------------------------------------------------------------
    @property
    def root(self) -> str:
        """The APPWORLD_ROOT this environment's tasks come from (built on first use)."""
        if self._root is None:
            from idagym.appworld.tasks import suite_root

            self._root = str(suite_root())
        return self._root

    def task_ids(self, split: str) -> list[str]:
        if split not in self._splits:
            from idagym.appworld.tasks import load_split

            self._splits[split] = list(load_split(split, root=self.root))
        return self._splits[split]

    def duplicated_task_ids(self, split: str) -> set[str]:
        from idagym.appworld.tasks import duplicated_task_ids

        return duplicated_task_ids(split, root=self.root)

    def task_difficulty(self, task_id: str) -> int | None:
        from idagym.appworld.tasks import task_difficulties

        return task_difficulties(self.root).get(task_id)

    def task_template(self, task_id: str) -> str | None:
        from idagym.appworld.tasks import task_templates

        return task_templates(self.root).get(task_id)

    def solution(self, task_id: str) -> list[str]:
        from idagym.appworld.tasks import ground_truth_code

        return [ground_truth_code(task_id, root=self.root)]

    def describe_apis(self) -> str:
        return API_SUMMARY

    # ---- the world ----------------------------------------------------------------------------
    def _ensure_world(self, start: bool) -> WorkerProcess | _RemoteWorld:
        """The world's handle; with `start`, a dead worker is replaced (only at reset: a worker
        lost mid-episode took the episode's state with it)."""
        if self._world is None:
            if self.remote_url:
                config = {"appworld_kwargs": self.appworld_kwargs, "max_output_chars": self.max_obs_chars,
                          "memory_limit_mb": self.memory_limit_mb, "step_timeout_s": self.step_timeout_s}
                self._world = _RemoteWorld(self.remote_url, config)
            else:
                self._world = WorkerProcess(
                    self.root,
                    memory_limit_mb=self.memory_limit_mb,
                    appworld_kwargs=self.appworld_kwargs,
                    max_output_chars=self.max_obs_chars,  # cut in the worker: the marker counts the true size
                    step_timeout_s=self.step_timeout_s,
                )
        if start and isinstance(self._world, WorkerProcess) and not self._world.alive:
            self._world.start()
        return self._world

    def _call(self, command: str, arg: Any = None, timeout_s: float | None = None) -> Any:
        """One command to the worker; a worker failure loses the episode (no evaluation)."""
        if self._failed is not None:
            raise EnvFailure(f"the world of this episode was lost: {self._failed}")
        try:
            world = self._ensure_world(start=command == "open")
            return world.call(command, arg, timeout_s=timeout_s or self.step_timeout_s + WORKER_GRACE_S)
        except EnvFailure as err:
            self._failed = str(err)
            raise

    def open_task(self, task_id: str, seed: int | None) -> str:
        # AppWorld worlds are deterministic per task (fixed random_seed): `seed` only picks the task.
        self._failed, self._completed = None, False
        if not self.remote_url and not Path(self.root, "data", "tasks", task_id).is_dir():
            raise ValueError(f"unknown AppWorld task id {task_id!r}: no folder under {self.root}/data/tasks")
        # Opening a task loads every app's database: allow more than one step's time.
        task = self._call("open", task_id, timeout_s=max(self.step_timeout_s, 60.0) + WORKER_GRACE_S)
        self.isolation = task["isolation"]
        sup = task["supervisor"]
        return (
            f"Task: {task['instruction']}\n\n"
            f"Supervisor: {sup['first_name']} {sup['last_name']}, email {sup['email']}, "
            f"phone {sup['phone_number']}.\n\n{RULES}" + (self._example(task_id) if self.worked_example else "")
        )

    def _example(self, task_id: str) -> str:
        """A solved train task other than `task_id`, as the text that ends the first observation."""
        from idagym.appworld.tasks import ground_truth_code

        train = [t for t in self.task_ids("train") if t not in self.duplicated_task_ids("train")]
        example = train[1] if train[0] == task_id else train[0]
        specs = json.loads(Path(self.root, "data", "tasks", example, "specs.json").read_text())
        return (f"\n\nFor example, another task was solved with one action:\nTask: {specs['instruction']}\n"
                f"```python\n{ground_truth_code(example, root=self.root).strip()}\n```")

    def execute(self, action: str) -> str:
        # Lone surrogates (not valid UTF-8) would break AppWorld's log writing: replace them.
        action = action.encode("utf-8", "replace").decode("utf-8")
        result = self._call("execute", action)
        self._completed = result["completed"]
        if result["lost"]:  # the sandbox is gone; the apps keep their state, so the episode is still scored
            raise EnvFailure(result["lost"])
        return result["output"]

    def task_completed(self) -> bool:
        return self._completed

    def evaluate(self) -> Evaluation:
        result = self._call("evaluate", timeout_s=max(self.step_timeout_s, 60.0) + WORKER_GRACE_S)
        return Evaluation(result["pass_count"], result["num_tests"], result["passes"], result["failures"])

    def close_task(self) -> None:
        world = self._world
        if world is None or self._failed is not None:
            return
        if isinstance(world, WorkerProcess) and not world.alive:
            return
        try:
            world.call("close", timeout_s=self.step_timeout_s + WORKER_GRACE_S)
        except EnvFailure:
            world.kill()

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._world is not None:
                if isinstance(self._world, WorkerProcess) and self._world.alive:
                    try:
                        self._world.call("exit", timeout_s=5.0)
                    except EnvFailure:
                        pass
                self._world.kill()
                self._world = None
            if not self.keep_outputs and not self.remote_url and self._root is not None:
                shutil.rmtree(Path(self._root, "experiments", "outputs", self.experiment_name), ignore_errors=True)
