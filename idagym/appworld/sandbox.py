"""UNTRUSTED SIDE: the interpreter that runs one episode's agent code, and nothing else.

A sandbox is a process forked from the worker's clean parent at reset and killed at the end of
the episode, so nothing an episode patches, imports or leaves running reaches the next one. It runs
AppWorld's own code execution (IPython shell, SafetyGuard, timeout, the `apis` object) with:

- no app databases: every API call goes as JSON over a pipe to the trusted apps process, which
  answers only the public APIs of the task's apps (`idagym.appworld.apps_host`);
- no ground truth: the task is opened with `load_ground_truth=False`;
- no files: before the first action the process confines itself with Landlock
  (`idagym.appworld.landlock`): read-only access to the Python installation, no writes, no
  program execution, no TCP, no signals to other processes. An audit hook refuses the same
  things with a clear message first (and is the only layer where the kernel has no Landlock).

Whatever the agent's code does to this process (patch AppWorld, poison builtins, start threads,
find objects with `gc`) stays here: scoring happens in another process that never ran agent code.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from multiprocessing.connection import Connection
from typing import Any

from idagym.appworld import wire
from idagym.core import truncate_text

# Audit events refused while agent code may run. Landlock already enforces the file, exec, network
# and signal rules in the kernel; the hook gives a clear PermissionError and covers kernels without it.
DENIED_EVENTS = frozenset({
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.kill",
    "os.killpg", "os.startfile", "subprocess.Popen", "pty.spawn", "signal.pthread_kill",
    "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "resource.setrlimit",
    "resource.prlimit", "os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown",
    "os.chdir", "os.truncate", "os.symlink", "os.link", "os.utime", "shutil.rmtree",
    "shutil.copyfile", "shutil.move", "sys.remote_exec",
})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def readable_paths() -> list[str]:
    """What agent code may read: the Python installation and idagym's own source, nothing else
    (not the task data, not run folders, not the current directory)."""
    import idagym

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(idagym.__file__)}
    return sorted(os.path.realpath(p) for p in paths)


def install_audit_guard(readable: Iterable[str]) -> None:
    """A permanent audit hook (Python cannot remove one) with no switch to flip: the policy lives in
    default arguments, which the hook itself refuses to let anyone reassign."""
    prefixes = tuple(p.rstrip(os.sep) + os.sep for p in readable)

    def hook(event: str, args: tuple, _prefixes: tuple = prefixes, _denied: frozenset = DENIED_EVENTS) -> None:
        if event == "open":
            path, mode, flags = args
            writes = (mode is not None and any(c in mode for c in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if isinstance(path, int):
                return  # an fd this process already holds
            if writes or not os.path.realpath(os.fsdecode(path)).startswith(_prefixes):
                raise PermissionError(f"access to {path!r} is not allowed in this environment")
        elif event in _denied or event.startswith("ctypes."):
            raise PermissionError(f"{event} is not allowed in this environment")
        elif event in ("os.listdir", "os.scandir") and args and args[0] is not None:
            if not os.path.realpath(os.fsdecode(args[0])).startswith(_prefixes):
                raise PermissionError(f"listing {args[0]!r} is not allowed in this environment")
        elif event == "object.__setattr__" and args[0] is hook:
            raise PermissionError("the environment's guard cannot be changed")

    sys.addaudithook(hook)


class _Response:
    """The apps process's answer, shaped like the responses AppWorld's Requester reads."""

    def __init__(self, status_code: int, text: str):
        self.status_code, self.text, self.headers = status_code, text, {}

    def json(self) -> Any:
        return json.loads(self.text)


class PipeClient:
    """Stands in for AppWorld's in-process TestClient: each request goes over the pipe to the
    apps process, which holds the databases."""

    def __init__(self, conn: Connection):
        self._conn = conn

    def _request(self, method: str, url: str, **kwargs: Any) -> _Response:
        wire.send(self._conn, {"method": method, "url": url, **{k: v for k, v in kwargs.items() if v is not None}})
        reply = wire.recv(self._conn)
        return _Response(int(reply["status"]), str(reply["text"]))

    def get(self, url: str, params: Any = None, headers: Any = None) -> _Response:
        return self._request("get", url, params=params, headers=headers)

    def post(self, url: str, json: Any = None, data: Any = None, headers: Any = None) -> _Response:
        return self._request("post", url, json=json, data=data, headers=headers)

    def put(self, url: str, json: Any = None, headers: Any = None) -> _Response:
        return self._request("put", url, json=json, headers=headers)

    def patch(self, url: str, json: Any = None, headers: Any = None) -> _Response:
        return self._request("patch", url, json=json, headers=headers)

    def delete(self, url: str, params: Any = None, headers: Any = None) -> _Response:
        return self._request("delete", url, params=params, headers=headers)


def open_world(task_id: str, api_conn: Connection, appworld_kwargs: dict[str, Any]) -> Any:
    """AppWorld's own world in "remote APIs" mode (it holds no databases), with the remote transport
    replaced by the pipe and the database-control calls removed: the apps process owns the state."""
    import appworld.requester as requester_module
    from appworld import AppWorld
    from appworld.apps.api_lib import set_local_random_seed

    for name in ("set_remote_dbs", "set_remote_date_and_time", "set_remote_random_seed",
                 "set_remote_show_api_response_schemas", "unset_remote_date_and_time"):
        setattr(requester_module, name, lambda *args, **kwargs: None)

    class SandboxWorld(AppWorld):
        def _prepare_directories(self) -> None:  # the output folder belongs to the apps process
            pass

        def _execute_preamble(self) -> None:
            super()._execute_preamble()
            self.requester.client = PipeClient(api_conn)

        def _save_state(self, directory: str) -> None:  # state lives in the apps process
            pass

        def save_logs(self) -> None:
            pass

    kwargs = dict(appworld_kwargs, load_ground_truth=False, raise_on_unsafe_syntax=True,
                  null_patch_unsafe_execution=True, remote_apis_url="http://apps.pipe")
    world = SandboxWorld(task_id=task_id, **kwargs)
    set_local_random_seed(kwargs.get("random_seed", 100))  # as in-process AppWorld seeds agent code
    return world


def run(task_id: str, exec_conn: Connection, api_conn: Connection, config: dict[str, Any]) -> None:
    """Open the task, confine the process, then run each action sent on `exec_conn`."""
    if config["memory_limit_mb"] > 0:
        import resource

        limit = int(config["memory_limit_mb"]) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    world = open_world(task_id, api_conn, config["appworld_kwargs"])
    from idagym.appworld import landlock

    readable = readable_paths()
    isolation = "landlock" if landlock.confine(readable) else "audit-hook"
    install_audit_guard(readable)
    wire.send(exec_conn, {"ready": isolation})
    max_chars = int(config["max_output_chars"])
    while True:
        try:
            code = wire.recv(exec_conn)["code"]
        except wire.WireError:
            return
        try:
            output = world.execute(code)
        except BaseException as err:  # noqa: BLE001 - escaped AppWorld: this interpreter is done
            message = f"{type(err).__name__}: {err}".splitlines()[0] if str(err) else type(err).__name__
            wire.send(exec_conn, {"error": f"the action escaped AppWorld's shell ({message})"})
            return
        wire.send(exec_conn, {"output": truncate_text(output, max_chars)})
