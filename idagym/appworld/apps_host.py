"""TRUSTED SIDE: the process that holds one episode's app databases. No agent code ever runs here.

It opens the task with AppWorld's unchanged engine (databases in memory, the clock frozen at the
task's date) and answers, as JSON over a pipe, the sandbox's API requests: only the public APIs of
the task's apps, the ones the agent's `apis` object exposes. Database control (loading, saving,
the admin app, private APIs) is not on that pipe, so app state changes only through the apps' own
API code. At the end of the episode, once the sandbox is dead, the worker asks it on a separate pipe
the sandbox never holds to save the end state in AppWorld's output folder and score it (`scorer`);
then it exits.
"""

from __future__ import annotations

import functools
import re
from multiprocessing.connection import Connection, wait
from typing import Any

from idagym.appworld import wire

_METHODS = ("get", "post", "put", "patch", "delete")
REFUSED = "This API is not available to agents in this environment."


@functools.cache
def public_routes(app_names: tuple[str, ...]) -> list[tuple[str, re.Pattern]]:
    """(method, path pattern) of every public API of `app_names`, from AppWorld's own API docs
    (cached: the worker computes them once, before it forks any episode)."""
    from appworld.requester import _get_api_name_to_doc

    routes = []
    for app in app_names:
        for doc in _get_api_name_to_doc(app, include_private_apis=False).values():
            pattern = re.sub(r"\\\{[^/]*?\\\}", "[^/]+", re.escape(doc["path"]))
            routes.append((doc["method"].lower(), re.compile(pattern + r"\Z")))
    return routes


class _NoShell:
    """Stands in for the IPython shell AppWorld builds for agent code, which never runs here: it
    holds a namespace and runs nothing (building a real one is a fifth of opening a task)."""

    def __init__(self, config: Any = None):
        self.user_ns: dict[str, Any] = {}

    def run_cell(self, *args: Any, **kwargs: Any) -> None:
        return None


class AppsHost:
    """One task's apps; `answer` serves one API request, `completed` checks the task's status."""

    def __init__(self, task_id: str, appworld_kwargs: dict[str, Any]):
        from appworld import AppWorld

        self.world = AppWorld(task_id=task_id, **dict(appworld_kwargs, load_ground_truth=False))
        self.client = self.world.requester.client
        self.routes = public_routes(tuple(self.world.requester.apps))
        self._status_stale = True
        self._completed = False

    def allowed(self, method: str, path: str) -> bool:
        return any(m == method and p.match(path) for m, p in self.routes)

    def answer(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict):
            return {"status": 400, "text": REFUSED}
        method, url = request.get("method"), request.get("url")
        if method not in _METHODS or not isinstance(url, str):
            return {"status": 400, "text": REFUSED}
        path = "/" + url.lstrip("/").split("?")[0]
        if not self.allowed(method, path):
            return {"status": 403, "text": REFUSED}
        kwargs = {k: request[k] for k in ("params", "json", "data", "headers") if k in request}
        try:
            self.world.requester.request_tracker.add_request(method, path, kwargs.get("json") or kwargs.get("params"))
            response = self.client.request(method.upper(), path, **kwargs)
        except Exception as err:  # noqa: BLE001 - a malformed request is the agent's error, not ours
            return {"status": 400, "text": f"{type(err).__name__}: {err}"}
        if path.startswith("/supervisor/"):
            self._status_stale = True  # only the supervisor app changes the task's status
        return {"status": response.status_code, "text": response.text}

    def completed(self) -> bool:
        if self._status_stale:
            self._completed = bool(self.world.task_completed())
            self._status_stale = False
        return self._completed

    def end_interaction(self, code: str, output: str) -> None:
        # Lone surrogates (not valid UTF-8) would break writing the log: replace them.
        code, output = (t.encode("utf-8", "replace").decode("utf-8") for t in (code, output))
        self.world.environment_io.append({"input": code, "output": output})
        self.world.requester.reset_request_count()

    def save(self) -> None:
        """Write the end state (databases and logs) to the task's AppWorld output folder."""
        self.world._save_state(self.world.output_db_home_path_on_disk)
        self.world.save_logs()


def run(task_id: str, control: Connection, api: Connection, config: dict[str, Any]) -> None:
    """Serve `api` (the sandbox) and `control` (the worker) until the worker asks for the score."""
    import appworld.environment

    appworld.environment.InteractiveShellEmbed = _NoShell  # in this process only, forked for one episode
    host = AppsHost(task_id, config["appworld_kwargs"])
    sup = host.world.task.supervisor
    wire.send(control, {
        "instruction": host.world.task.instruction,
        "supervisor": {k: sup[k] for k in ("first_name", "last_name", "email", "phone_number")},
    })
    conns: list[Connection] = [control, api]
    while True:
        for conn in wait(conns):
            try:
                message = wire.recv(conn)
            except wire.WireError:
                if conn is control:
                    return
                conns.remove(api)  # the sandbox is gone; its state stays for scoring
                continue
            if conn is api:
                wire.send(api, host.answer(message))
            elif message["cmd"] == "status":
                wire.send(control, {"completed": host.completed()})
            elif message["cmd"] == "log":
                host.end_interaction(message["input"], message["output"])
            elif message["cmd"] == "score":
                from idagym.appworld import scorer

                host.save()
                wire.send(control, scorer.score(task_id, config["appworld_kwargs"]["experiment_name"]))
                return
