"""TRUSTED SIDE: the per-environment worker process, and the handle the environment drives it with.

The worker imports AppWorld once and never runs agent code or opens a task itself: it is the clean
parent from which every episode's processes are forked (cheap: AppWorld is already imported):

- the apps process (`apps_host`, trusted): the task's databases, serving public API calls;
- the sandbox (`sandbox`, untrusted): a fresh interpreter that runs the episode's actions;
- after the sandbox was killed, the apps process saves the end state and scores it (`scorer`).

The worker enforces the step time limit on the sandbox: a sandbox that hangs, crashes or poisons
itself is killed, costing only its episode, which is still scored on the state its API calls left.
The environment's process enforces a wall-clock limit on the worker itself; a worker that fails is
killed, the call raises `EnvFailure`, and the next reset starts a fresh one.

The worker is a plain subprocess (`python -m idagym.appworld.worker FD`), not a multiprocessing child:
vector environments run each env in a daemonic process, and daemonic processes may not have
multiprocessing children.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from multiprocessing.connection import Connection, Pipe
from pathlib import Path
from typing import Any

from idagym.appworld import wire
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

    `root` is the APPWORLD_ROOT the worker uses; `memory_limit_mb` caps each sandbox's address
    space (RLIMIT_AS; 0 for none); `appworld_kwargs` go to `AppWorld(task_id, ...)`; a sandbox
    that runs one action longer than `step_timeout_s` is killed; outputs are cut to
    `max_output_chars` before they cross a pipe.
    """

    def __init__(self, root: str, *, memory_limit_mb: int, appworld_kwargs: dict[str, Any], max_output_chars: int,
                 step_timeout_s: float):
        self.root = root
        self.memory_limit_mb = memory_limit_mb
        self.appworld_kwargs = appworld_kwargs
        self.max_output_chars = max_output_chars
        self.step_timeout_s = step_timeout_s
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
            [sys.executable, "-m", "idagym.appworld.worker", str(child_conn.fileno())],
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
            "step_timeout_s": self.step_timeout_s,
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


# ---- the worker side: a clean parent that forks each episode's processes ----------------------

_PR_SET_PDEATHSIG, _PR_SET_CHILD_SUBREAPER = 1, 36
APPS_TIMEOUT_S = 120.0  # opening a task, saving its state, scoring: AppWorld's own work, no agent code


def _prctl(option: int, value: int) -> None:
    import ctypes

    ctypes.CDLL(None).prctl(option, value, 0, 0, 0)


def _watch_parent(parent_pid: int) -> None:
    """Exit when the parent is gone (killed with SIGKILL: no chance to kill us itself)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(0)


def _fork(target: Callable[..., None], *args: Any, keep: tuple[Connection, ...], new_session: bool = False) -> int:
    """Run `target(*args)` in a child of this process that holds only the `keep` pipes (and
    /dev/null as stdin, stdout, stderr) and dies with this process."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if new_session:
            os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        kept = {0, 1, 2} | {c.fileno() for c in keep}
        for name in os.listdir("/proc/self/fd"):
            if int(name) not in kept:
                try:
                    os.close(int(name))
                except OSError:
                    pass
        target(*args)
        code = 0
    finally:
        os._exit(code)


class _Episode:
    """The processes of one episode: the apps (trusted), the sandbox (untrusted), their pipes."""

    def __init__(self, task_id: str, config: dict[str, Any]):
        from idagym.appworld import apps_host, sandbox

        self.task_id, self.config = task_id, config
        self.control, apps_control = Pipe()
        api_apps, api_sandbox = Pipe()
        self.exec, sandbox_exec = Pipe()
        self.apps_pid: int | None = _fork(apps_host.run, task_id, apps_control, api_apps, config, keep=(apps_control, api_apps))
        self.sandbox_pid: int | None = _fork(sandbox.run, task_id, sandbox_exec, api_sandbox, config,
                                             keep=(sandbox_exec, api_sandbox), new_session=True)
        for conn in (apps_control, api_apps, sandbox_exec, api_sandbox):
            conn.close()
        self.lost: str | None = None  # why the sandbox is gone, once it is
        self.score: dict[str, Any] | None = None  # the end state's score, once taken

    def _reply(self, conn: Connection, timeout_s: float, what: str) -> Any:
        if not conn.poll(timeout_s):
            raise TimeoutError(f"{what} took longer than {timeout_s:g} s")
        return wire.recv(conn)

    def start(self) -> dict[str, Any]:
        """Wait until both processes are up; the task's instruction and supervisor."""
        try:
            task = self._reply(self.control, APPS_TIMEOUT_S, "opening the task")
        except (TimeoutError, wire.WireError) as err:
            raise RuntimeError(f"AppWorld could not open task {self.task_id}: {err}") from None
        try:
            self.isolation = self._reply(self.exec, APPS_TIMEOUT_S, "starting the sandbox")["ready"]
        except (TimeoutError, wire.WireError, KeyError) as err:
            raise RuntimeError(f"the sandbox for task {self.task_id} did not start: {err}") from None
        return {**task, "isolation": self.isolation}

    def execute(self, code: str) -> dict[str, Any]:
        max_chars = int(self.config["max_output_chars"])
        output = ""
        if self.lost is None:
            try:
                wire.send(self.exec, {"code": code})
                reply = self._reply(self.exec, float(self.config["step_timeout_s"]), "the step")
                if "error" in reply:
                    self.lost = str(reply["error"])
                else:
                    output = truncate_text(str(reply["output"]), max_chars)
            except TimeoutError as err:
                self.lost = f"{err}: the episode's interpreter was killed"
            except (wire.WireError, OSError, KeyError):
                code_ = self._kill_sandbox()
                self.lost = f"the episode's interpreter died (exit code {code_})"
            if self.lost is not None:
                self._kill_sandbox()
        if self.lost is None:
            wire.send(self.control, {"cmd": "log", "input": code, "output": output})
        wire.send(self.control, {"cmd": "status"})
        completed = bool(self._reply(self.control, APPS_TIMEOUT_S, "the task status")["completed"])
        return {"output": output, "completed": completed, "lost": self.lost}

    def evaluate(self) -> dict[str, Any]:
        # No agent code runs anywhere while the episode is scored: SIGKILL takes effect before the
        # sandbox could run again; reaping it waits only for the kernel's cleanup, done meanwhile.
        sandbox_pid = self._signal_sandbox()
        try:
            if self.score is None:
                wire.send(self.control, {"cmd": "score"})
                try:
                    self.score = self._reply(self.control, APPS_TIMEOUT_S, "scoring")
                except wire.WireError:
                    raise RuntimeError(f"scoring task {self.task_id} failed: the apps process exited without a result") from None
                finally:
                    if self.score is None:
                        self._end_apps()  # it has scored otherwise, and exits: reaped at close
        finally:
            self._kill_sandbox(sandbox_pid)
        return self.score

    def _end_apps(self) -> None:
        if self.apps_pid is None:
            return
        if self.score is None:  # done when it has scored; otherwise it is stopped
            try:
                os.kill(self.apps_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap(self.apps_pid)
        self.apps_pid = None

    def _signal_sandbox(self) -> int | None:
        """SIGKILL the sandbox and anything it forked (its own process group); its pid, to reap."""
        pid, self.sandbox_pid = self.sandbox_pid, None
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.exec.close()
        return pid

    def _kill_sandbox(self, pid: int | None = None) -> int | None:
        """Kill the sandbox (or reap `pid`, signalled before) and return its exit code."""
        pid = self._signal_sandbox() if pid is None else pid
        return None if pid is None else _reap(pid)

    def close(self) -> None:
        self._kill_sandbox()
        self._end_apps()
        self.control.close()
        _reap_orphans()


def _reap(pid: int) -> int | None:
    """Wait for `pid` (killed or exiting) and return its exit code (negative: the signal)."""
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status)


def _reap_orphans() -> None:
    """Kill what an episode left behind: we are a subreaper, so its orphans became our children."""
    try:
        with open(f"/proc/self/task/{os.getpid()}/children") as f:
            pids = [int(p) for p in f.read().split()]
    except OSError:
        pids = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _reap(pid)


def _serve(conn: Connection) -> None:
    command, config = conn.recv()
    if command != "config":
        conn.send(("fatal", f"worker expected a config message, got {command!r}"))
        return
    os.environ["APPWORLD_ROOT"] = config["root"]
    try:
        from idagym.appworld.tasks import use_root

        use_root(config["root"])
        _warm_up(config)
    except BaseException as err:  # noqa: BLE001 - reported to the parent as one line
        conn.send(("fatal", f"the AppWorld worker could not start: {type(err).__name__}: {err}"))
        return
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    conn.send(("ok", os.getpid()))
    episode: _Episode | None = None
    while True:
        try:
            command, arg = conn.recv()
        except EOFError:
            break
        try:
            if command == "open":
                if episode is not None:
                    episode.close()
                episode = None
                episode = _Episode(arg, config)
                value: Any = episode.start()
            elif command in ("execute", "evaluate"):
                if episode is None:
                    raise RuntimeError(f"{command} before any task was opened")
                value = episode.execute(arg) if command == "execute" else episode.evaluate()
            elif command == "close":
                if episode is not None:
                    episode.close()
                episode, value = None, None
            elif command == "exit":
                conn.send(("ok", None))
                break
            else:
                raise ValueError(f"unknown worker command {command!r}")
        except BaseException as err:  # noqa: BLE001 - the parent turns it into EnvFailure
            conn.send(("fatal", f"{command} failed in AppWorld: {type(err).__name__}: {err}".splitlines()[0]))
            break
        conn.send(("ok", value))
    if episode is not None:
        episode.close()


def _warm_up(config: dict[str, Any]) -> None:
    """Import and cache what every episode needs, once, so that each fork starts warm. Only code and
    API docs are cached here, never a task's data: the sandbox is forked from this process."""
    import importlib

    import freezegun
    import IPython.terminal.embed  # noqa: F401 - the sandbox's shell
    from appworld import AppWorld  # noqa: F401
    from appworld.apps import get_all_apps
    from appworld.collections.api_docs import ApiDocCollection
    from appworld.common.utils import import_apis_module
    from appworld.evaluator import evaluate_task  # noqa: F401
    from appworld.requester import _get_api_name_to_doc

    from idagym.appworld import apps_host

    for app in get_all_apps():
        import_apis_module(app)
        _get_api_name_to_doc(app, include_private_apis=True)
        _get_api_name_to_doc(app, include_private_apis=False)
    for schemas in (True, False):  # every task opens the docs of all apps (cached by AppWorld)
        ApiDocCollection.load(load_apps=tuple(get_all_apps(skip_admin=True)), include_response_schemas=schemas)
    apps_host.public_routes(tuple(sorted(get_all_apps())))  # the API allowlist of a task on every app
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notices of modules AppWorld imports anyway
        for name in _modules_an_episode_imports(config):
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001, S112 - a module that cannot be imported alone stays lazy
                continue
    # freezegun scans every module the first time it freezes the clock, and caches what it found.
    freezer = freezegun.freeze_time("2023-01-01")
    freezer.start()
    freezer.stop()


def _modules_an_episode_imports(config: dict[str, Any]) -> list[str]:
    """The library modules AppWorld imports lazily while it opens, runs and scores a task, found by
    playing one episode of the first task in a child process (which takes its data with it)."""
    tasks = Path(config["root"], "data", "tasks")
    task_id = min((p.name for p in tasks.iterdir() if p.is_dir()), default=None) if tasks.is_dir() else None
    if task_id is None:
        return []
    mine, theirs = Pipe()
    pid = _fork(_play_probe_episode, task_id, f"{config['appworld_kwargs']['experiment_name']}-warm-up",
                config["root"], theirs, keep=(theirs,))
    theirs.close()
    names: list[str] = []
    try:
        if mine.poll(APPS_TIMEOUT_S):
            names = list(wire.recv(mine))
        else:
            os.kill(pid, signal.SIGKILL)
    except wire.WireError:
        pass  # the probe failed: modules stay lazy, episodes only start slower
    finally:
        mine.close()
        _reap(pid)
    return names


def _play_probe_episode(task_id: str, experiment_name: str, root: str, conn: Connection) -> None:
    import shutil

    from appworld import AppWorld
    from appworld.evaluator import evaluate_task

    before = set(sys.modules)
    world = AppWorld(task_id=task_id, experiment_name=experiment_name, load_ground_truth=False)
    world.execute("print(apis.api_docs.show_app_descriptions())")
    world._save_state(world.output_db_home_path_on_disk)
    world.close()
    evaluate_task(task_id=task_id, experiment_name=experiment_name, suppress_errors=True)
    shutil.rmtree(Path(root, "experiments", "outputs", experiment_name), ignore_errors=True)
    data = Path(root).resolve()
    wire.send(conn, sorted(name for name, module in list(sys.modules.items()) if name not in before
                           and not str(getattr(module, "__file__", None) or "").startswith(str(data))))


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    conn = Connection(int(sys.argv[1]))
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    _serve(conn)
    os._exit(0)  # skip interpreter teardown (AppWorld's atexit hooks)


if __name__ == "__main__":
    main()
