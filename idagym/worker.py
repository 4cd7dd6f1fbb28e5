"""One AppWorld world in its own process, driven over a pipe.

AppWorld freezes the process clock, uses SIGALRM for its execution timeout and keeps global
state, so each environment owns one worker process holding one world. The parent enforces a
wall-clock limit per call; a worker that hangs, crashes or runs out of memory is killed, the call
raises `EnvFailure`, and the next call starts a fresh worker.

The worker is a plain subprocess (`python -m idagym.worker FD`), not a multiprocessing child:
vector environments run each env in a daemonic process, and daemonic processes may not have
multiprocessing children.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from multiprocessing.connection import Connection, Pipe
from typing import Any

from idagym.core import EnvFailure, truncate_text

# Seconds a fresh worker may take to import AppWorld and answer its first message.
START_TIMEOUT_S = 120.0


def _kill(proc: subprocess.Popen, conn: Connection) -> None:
    """Kill the worker and reap it (safe to call twice; used by the finalizer at exit)."""
    try:
        conn.close()
    except OSError:
        pass
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


class WorkerProcess:
    """A handle on one AppWorld worker process; `call` sends one command and waits for its answer.

    `root` is the APPWORLD_ROOT the worker uses; `memory_limit_mb` caps its address space
    (RLIMIT_AS; 0 for none); `appworld_kwargs` go to `AppWorld(task_id, ...)`; outputs are cut
    to `max_output_chars` in the worker so that huge prints never cross the pipe.
    """

    def __init__(self, root: str, *, memory_limit_mb: int, appworld_kwargs: dict[str, Any], max_output_chars: int):
        self.root = root
        self.memory_limit_mb = memory_limit_mb
        self.appworld_kwargs = appworld_kwargs
        self.max_output_chars = max_output_chars
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._finalizer: weakref.finalize | None = None
        self._starting = False

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Launch a worker without waiting for it: it imports AppWorld while the caller goes on;
        the first `call` waits for its readiness."""
        self.kill()
        parent_conn, child_conn = Pipe(duplex=True)
        env = dict(os.environ, APPWORLD_ROOT=self.root, OMP_WAIT_POLICY="PASSIVE")
        # stdout goes nowhere: agent output is captured by AppWorld; stray library prints must not
        # interleave with the caller's terminal. stderr stays for crash tracebacks.
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "idagym.worker", str(child_conn.fileno())],
            pass_fds=(child_conn.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a Ctrl-C in the terminal reaches the parent only; it kills us
        )
        child_conn.close()
        self._conn = parent_conn
        self._finalizer = weakref.finalize(self, _kill, self._proc, parent_conn)
        config = {
            "root": self.root,
            "memory_limit_mb": self.memory_limit_mb,
            "appworld_kwargs": self.appworld_kwargs,
            "max_output_chars": self.max_output_chars,
        }
        parent_conn.send(("config", config))
        self._starting = True

    def kill(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # runs _kill once
        self._proc = self._conn = self._finalizer = None
        self._starting = False

    def _replace(self) -> None:
        """Kill this worker and launch the next one right away, so it is warm by the next reset."""
        self.kill()
        self.start()

    def call(self, command: str, arg: Any = None, *, timeout_s: float) -> Any:
        """Send `command` and return the worker's answer; raise EnvFailure on a hang past
        `timeout_s`, a crash, or an error that escaped AppWorld (the worker is then replaced)."""
        if not self.alive:
            code = self._proc.returncode if self._proc is not None else None
            self.kill()
            raise EnvFailure("the AppWorld worker is not running" if code is None else f"the AppWorld worker died (exit code {code})")
        if self._starting:
            self._starting = False
            self._exchange(None, "start", START_TIMEOUT_S, replace=False)  # answer to the config
        return self._exchange((command, arg), command, timeout_s, replace=True)

    def _exchange(self, message: tuple | None, command: str, timeout_s: float, *, replace: bool) -> Any:
        """Send `message` (None: only wait for an answer) and return the answer's value."""
        assert self._conn is not None and self._proc is not None
        # A failed start is not retried (it would fail again); a failed world is replaced.
        end = self._replace if replace else self.kill
        try:
            if message is not None:
                self._conn.send(message)
            if not self._conn.poll(timeout_s):
                end()
                raise EnvFailure(f"{command} took longer than {timeout_s:g} s: the AppWorld worker was killed")
            status, value = self._conn.recv()
        except (EOFError, OSError):
            code = self._proc.wait(timeout=5) if self._proc is not None else None
            end()
            raise EnvFailure(f"the AppWorld worker died during {command} (exit code {code})") from None
        except BaseException:
            # Interrupted mid-call (KeyboardInterrupt): the world's state is unknown, so end it.
            self.kill()
            raise
        if status == "fatal":
            end()
            raise EnvFailure(value)
        return value


# ---- the worker side -------------------------------------------------------------------------


def _watch_parent(parent_pid: int) -> None:
    """Exit when the parent is gone (killed with SIGKILL: no chance to kill us itself)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(0)


# Audit events refused while the agent's code runs, besides opening files outside the Python
# installation. AppWorld's own guard is a syntax check plus null-patching of listed functions,
# which lets e.g. `pathlib.Path("/etc/passwd").read_text()` or the task's ground-truth files
# through; Python's audit hooks see every such call however it is spelled.
_DENIED_EVENTS = frozenset({
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.kill",
    "os.killpg", "os.startfile", "subprocess.Popen", "pty.spawn", "ctypes.dlopen", "ctypes.dlsym",
    "socket.connect", "socket.bind", "socket.sendto", "os.listdir", "os.scandir", "os.remove",
    "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.chdir", "os.truncate",
    "os.symlink", "os.link", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.move",
})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _install_guard() -> Callable[[bool], None]:
    """Install an audit hook (it cannot be removed) that, while switched on, refuses file access
    outside the Python installation, process creation, signals and sockets. Returns the switch."""
    import idagym

    readable = tuple(
        os.path.realpath(p) + os.sep
        for p in {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.dirname(idagym.__file__))}
    )
    active = [False]  # a closure cell, not a module attribute the agent's code could flip

    def hook(event: str, args: tuple) -> None:
        if not active[0]:
            return
        if event == "open":
            path, mode, flags = args
            writes = (mode is not None and any(c in mode for c in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if isinstance(path, int) or writes or not os.path.realpath(os.fsdecode(path)).startswith(readable):
                raise PermissionError(f"access to {path!r} is not allowed in this environment")
        elif event in _DENIED_EVENTS:
            raise PermissionError(f"{event} is not allowed in this environment")

    sys.addaudithook(hook)

    def switch(on: bool) -> None:
        active[0] = on

    return switch


def _guarded(world: Any, switch: Callable[[bool], None]) -> None:
    """Switch the guard on exactly while the agent's cell runs (AppWorld's own state saving and
    logging around it must still write the output folder)."""
    run_cell = world._shell_run_cell

    def guarded_run_cell(code: str) -> Any:
        switch(True)
        try:
            return run_cell(code)
        finally:
            switch(False)

    world._shell_run_cell = guarded_run_cell


def _serve(conn: Connection) -> None:
    command, config = conn.recv()
    if command != "config":
        conn.send(("fatal", f"worker expected a config message, got {command!r}"))
        return
    if config["memory_limit_mb"] > 0:
        import resource

        limit = int(config["memory_limit_mb"]) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.environ["APPWORLD_ROOT"] = config["root"]
    try:
        from idagym.tasks import use_root

        use_root(config["root"])
        from appworld import AppWorld
    except BaseException as err:  # noqa: BLE001 - reported to the parent as one line
        conn.send(("fatal", f"the AppWorld worker could not start: {type(err).__name__}: {err}"))
        return
    switch = _install_guard()
    conn.send(("ok", os.getpid()))
    kwargs, max_chars = config["appworld_kwargs"], config["max_output_chars"]
    world: Any = None
    completed = False
    while True:
        try:
            command, arg = conn.recv()
        except EOFError:
            break
        try:
            if command == "open":
                if world is not None:
                    world.close()
                    world = None
                world = AppWorld(task_id=arg, **kwargs)
                _guarded(world, switch)
                completed = world.task_completed()
                sup = world.task.supervisor
                value: Any = {
                    "instruction": world.task.instruction,
                    "supervisor": {k: sup[k] for k in ("first_name", "last_name", "email", "phone_number")},
                }
            elif command == "execute":
                # The completion check rides along so that a step is one round trip. It costs an
                # API call, so it is made only when this cell called a supervisor API (only
                # complete_task changes the task's status).
                requests = world.requester.request_tracker.requests
                seen = len(requests)
                output = truncate_text(world.execute(arg), max_chars)
                if len(requests) < seen or any(r["url"].startswith("/supervisor/") for r in requests[seen:]):
                    completed = world.task_completed()
                value = (output, completed)
            elif command == "evaluate":
                tracker = world.evaluate(suppress_errors=True)
                value = {
                    "pass_count": tracker.pass_count,
                    "num_tests": tracker.num_tests,
                    "passes": [p["requirement"] for p in tracker.passes],
                    "failures": [f["requirement"] for f in tracker.failures],
                }
            elif command == "close":
                if world is not None:
                    world.close()
                world, value = None, None
            elif command == "exit":
                conn.send(("ok", None))
                break
            else:
                raise ValueError(f"unknown worker command {command!r}")
        except BaseException as err:  # noqa: BLE001 - the parent turns it into EnvFailure
            # Something escaped AppWorld (e.g. `raise KeyboardInterrupt` skips its cleanup and
            # leaves its patched builtins in place): this world can't be trusted, start afresh.
            conn.send(("fatal", f"{command} failed in AppWorld: {type(err).__name__}: {err}".splitlines()[0]))
            break
        conn.send(("ok", value))


def main() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    conn = Connection(int(sys.argv[1]))
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    _serve(conn)
    os._exit(0)  # skip interpreter teardown (AppWorld's atexit hooks, frozen clock)


if __name__ == "__main__":
    main()
