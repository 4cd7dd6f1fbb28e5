"""AppWorld as a text Gymnasium environment: the agent writes Python that calls the apps' APIs.

Each environment owns one AppWorld world, kept in a worker process (`idagym.worker`) or, with
`remote_url`, in an AppWorld environment server (`idagym serve`) reached over HTTP.
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

from idagym.core import DigitalEnv, EnvFailure, Evaluation
from idagym.worker import WorkerProcess

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

API_SUMMARY = (
    "Python code calling AppWorld's app APIs (apis.<app>.<api>(...)); discover them with "
    "apis.api_docs.show_app_descriptions / show_api_descriptions / show_api_doc; finish with "
    "apis.supervisor.complete_task(answer=...)."
)


class _RemoteWorld:
    """Talks to an AppWorld environment server (`appworld.serve.environment.app`) over HTTP.

    Same `call(command, arg, timeout_s=...)` interface as WorkerProcess; needs no AppWorld import.
    """

    def __init__(self, url: str, appworld_kwargs: dict[str, Any]):
        self.url = url.rstrip("/")
        self.appworld_kwargs = appworld_kwargs
        self.task_id: str | None = None

    def _post(self, endpoint: str, payload: dict[str, Any], timeout_s: float) -> Any:
        request = urllib.request.Request(
            f"{self.url}/{endpoint}",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return json.loads(response.read())["output"]
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")[:500]
            raise EnvFailure(f"AppWorld server {endpoint} failed with HTTP {err.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise EnvFailure(f"AppWorld server at {self.url} did not answer {endpoint}: {reason}") from None

    def call(self, command: str, arg: Any = None, *, timeout_s: float) -> Any:
        if command == "open":
            self.task_id = arg
            return self._post("initialize", {"task_id": arg, **self.appworld_kwargs}, timeout_s)
        payload = {"task_id": self.task_id}
        if command == "execute":
            output = self._post("execute", {**payload, "code": arg}, timeout_s)
            return output, bool(self._post("task_completed", payload, timeout_s))
        if command == "evaluate":
            out = self._post("evaluate", {**payload, "suppress_errors": True}, timeout_s)
            return {
                "pass_count": len(out["passes"]),
                "num_tests": out["num_tests"],
                "passes": [p["requirement"] for p in out["passes"]],
                "failures": [f["requirement"] for f in out["failures"]],
            }
        if command == "close":
            return self._post("close", payload, timeout_s)
        raise ValueError(f"unknown command {command!r}")

    def kill(self) -> None:
        self.task_id = None


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
        root: the APPWORLD_ROOT to use; default `idagym.tasks.suite_root()` (real data under
            $APPWORLD_ROOT when present, otherwise the built-in offline suite).
        keep_outputs: keep AppWorld's per-task output folders (logs, databases) after `close()`.
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
        root: str | os.PathLike | None = None,
        keep_outputs: bool = False,
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
        self.memory_limit_mb = memory_limit_mb
        self._root = None if root is None else str(Path(root).resolve())
        self.experiment_name = f"{experiment_name}/{uuid.uuid4().hex[:12]}"
        self.appworld_kwargs: dict[str, Any] = {
            "experiment_name": self.experiment_name,
            "timeout_seconds": int(appworld_timeout_s),
            "raise_on_unsafe_syntax": True,
            "null_patch_unsafe_execution": True,
            "max_interactions": max_turns + 10,
        }
        self._world: WorkerProcess | _RemoteWorld | None = None
        self._completed = False
        self._failed: str | None = None
        self._splits: dict[str, list[str]] = {}

    # ---- data -------------------------------------------------------------------------------
    @property
    def root(self) -> str:
        """The APPWORLD_ROOT this environment's tasks come from (built on first use)."""
        if self._root is None:
            from idagym.tasks import suite_root

            self._root = str(suite_root())
        return self._root

    def task_ids(self, split: str) -> list[str]:
        if split not in self._splits:
            from idagym.tasks import load_split

            self._splits[split] = list(load_split(split, root=self.root))
        return self._splits[split]

    def solution(self, task_id: str) -> list[str]:
        from idagym.tasks import ground_truth_code

        return [ground_truth_code(task_id, root=self.root)]

    def describe_apis(self) -> str:
        return API_SUMMARY

    # ---- the world ----------------------------------------------------------------------------
    def _ensure_world(self, start: bool) -> WorkerProcess | _RemoteWorld:
        """The world's handle; with `start`, a dead worker is replaced (only at reset: a worker
        lost mid-episode took the episode's state with it)."""
        if self._world is None:
            if self.remote_url:
                self._world = _RemoteWorld(self.remote_url, self.appworld_kwargs)
            else:
                self._world = WorkerProcess(
                    self.root,
                    memory_limit_mb=self.memory_limit_mb,
                    appworld_kwargs=self.appworld_kwargs,
                    max_output_chars=self.max_obs_chars,  # cut in the worker: the marker counts the true size
                )
        if start and isinstance(self._world, WorkerProcess) and not self._world.alive:
            self._world.start()
        return self._world

    def _call(self, command: str, arg: Any = None, timeout_s: float | None = None) -> Any:
        if self._failed is not None:
            raise EnvFailure(f"the world of this episode was lost: {self._failed}")
        try:
            world = self._ensure_world(start=command == "open")
            return world.call(command, arg, timeout_s=timeout_s or self.step_timeout_s)
        except EnvFailure as err:
            self._failed = str(err)
            raise

    def open_task(self, task_id: str, seed: int | None) -> str:
        # AppWorld worlds are deterministic per task (fixed random_seed): `seed` only picks the task.
        self._failed, self._completed = None, False
        if not self.remote_url and not Path(self.root, "data", "tasks", task_id).is_dir():
            raise ValueError(f"unknown AppWorld task id {task_id!r}: no folder under {self.root}/data/tasks")
        # Creating a world loads every app's database: allow more than one step's time.
        task = self._call("open", task_id, timeout_s=max(self.step_timeout_s, 60.0))
        sup = task["supervisor"]
        return (
            f"Task: {task['instruction']}\n\n"
            f"Supervisor: {sup['first_name']} {sup['last_name']}, email {sup['email']}, "
            f"phone {sup['phone_number']}.\n\n{RULES}"
        )

    def execute(self, action: str) -> str:
        # Lone surrogates (not valid UTF-8) would break AppWorld's log writing: replace them.
        action = action.encode("utf-8", "replace").decode("utf-8")
        output, self._completed = self._call("execute", action)
        return output

    def task_completed(self) -> bool:
        return self._completed

    def evaluate(self) -> Evaluation:
        result = self._call("evaluate", timeout_s=max(self.step_timeout_s, 60.0))
        return Evaluation(result["pass_count"], result["num_tests"], result["passes"], result["failures"])

    def close_task(self) -> None:
        world = self._world
        if world is None or self._failed is not None:
            return
        if isinstance(world, WorkerProcess) and not world.alive:
            return
        try:
            world.call("close", timeout_s=self.step_timeout_s)
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
