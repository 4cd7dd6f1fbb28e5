"""TRUSTED SIDE: the idagym environment server (`idagym serve`) for `AppWorldEnv(remote_url=...)`.

Each client session gets a worker of its own (`idagym.appworld.worker`), so remote episodes have
exactly the guarantees of local ones: a fresh sandbox per episode, app state changed only through
public APIs, scoring in a clean process. The server speaks one small JSON protocol (`POST /call`
with a session id, a command and its argument) and exposes no database control. It binds
127.0.0.1 unless told otherwise; sandboxes cannot open TCP connections, so agent code cannot reach it.
"""

from __future__ import annotations

import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from idagym.appworld.worker import WorkerProcess
from idagym.core import EnvFailure

COMMANDS = ("open", "execute", "evaluate", "close", "exit")
_SESSION = re.compile(r"[0-9a-f]{8,64}\Z")


class Sessions:
    """One worker per client session; the client picks timeouts and limits, the server the paths."""

    def __init__(self, root: str):
        self.root = root
        self.workers: dict[str, WorkerProcess] = {}
        self.lock = threading.Lock()

    def worker(self, session: str, config: dict[str, Any]) -> WorkerProcess:
        with self.lock:
            if session not in self.workers:
                kwargs = dict(config.get("appworld_kwargs") or {})
                kwargs["experiment_name"] = f"idagym-serve/{session}"  # never a client-chosen path
                self.workers[session] = WorkerProcess(
                    self.root, memory_limit_mb=int(config.get("memory_limit_mb", 4096)), appworld_kwargs=kwargs,
                    max_output_chars=int(config.get("max_output_chars", 8000)),
                    step_timeout_s=float(config.get("step_timeout_s", 60.0)),
                )
            return self.workers[session]

    def call(self, request: dict[str, Any]) -> Any:
        session, command = str(request.get("session", "")), request.get("command")
        if not _SESSION.match(session) or command not in COMMANDS:
            raise ValueError(f"bad request: session must be hex and command one of {', '.join(COMMANDS)}")
        config = request.get("config") or {}
        worker = self.worker(session, config)
        if command == "open" and not worker.alive:
            worker.start()
        step_timeout = float(config.get("step_timeout_s", 60.0))
        value = worker.call(command, request.get("arg"), timeout_s=max(step_timeout, 60.0) + 10.0)
        if command == "exit":
            with self.lock:
                self.workers.pop(session, None)
            worker.kill()
        return value

    def close(self) -> None:
        with self.lock:
            for worker in self.workers.values():
                worker.kill()
            self.workers.clear()


def _handler(sessions: Sessions) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # health check
            self._answer(200, {"value": "idagym environment server"})

        def do_POST(self) -> None:
            if self.path != "/call":
                self._answer(404, {"error": f"unknown endpoint {self.path}: use POST /call"})
                return
            try:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                self._answer(200, {"value": sessions.call(request)})
            except (EnvFailure, ValueError, TypeError, AttributeError) as err:
                self._answer(200, {"error": str(err)})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: one line per step is noise
            pass

    return Handler


def serve(host: str = "127.0.0.1", port: int = 8000, root: str | os.PathLike | None = None) -> None:
    """Run the server in this process until interrupted; `root` defaults to the task suite's root."""
    from idagym.appworld.tasks import suite_root

    sessions = Sessions(str(root if root is not None else suite_root()))
    server = ThreadingHTTPServer((host, port), _handler(sessions))
    try:
        server.serve_forever()
    finally:
        server.server_close()
        sessions.close()
