"""The sandbox's layers on their own: the kernel confinement (Landlock) and the apps' API allowlist."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from idagym.appworld import landlock, sandbox

pytestmark = pytest.mark.skipif(landlock.abi_version() == 0, reason="this kernel has no Landlock")

# Run in a forked child: confinement is irrevocable, so it must not touch the test process.
PROBES = """
import json, os, socket, subprocess, sys
from idagym.appworld import landlock, sandbox
secret = sys.argv[1]
results = {"abi": landlock.confine(sandbox.readable_paths())}
def attempt(name, fn):
    try:
        fn()
        results[name] = "allowed"
    except OSError as err:
        results[name] = type(err).__name__
attempt("read_secret", lambda: open(secret).read())
attempt("read_python", lambda: open(os.__file__).read())
attempt("write_tmp", lambda: open("/tmp/idagym-landlock-probe", "w"))
attempt("exec", lambda: subprocess.run(["/bin/true"], check=True))
attempt("tcp", lambda: socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=2))
attempt("signal_parent", lambda: os.kill(os.getppid(), 0))
print(json.dumps(results))
"""


def test_confined_process_reads_only_python_and_reaches_nothing(tmp_path):
    secret = tmp_path / "answer.json"
    secret.write_text('"42"')
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        out = subprocess.run([sys.executable, "-c", PROBES, str(secret), str(port)], capture_output=True, text=True,
                             timeout=60)
    results = json.loads(out.stdout.strip().splitlines()[-1])
    assert results["abi"] >= 1 and results["read_python"] == "allowed"
    assert results["read_secret"] == "PermissionError" and results["write_tmp"] == "PermissionError"
    assert results["exec"] == "PermissionError"
    if results["abi"] >= 4:
        assert results["tcp"] == "PermissionError"
    if results["abi"] >= 6:
        assert results["signal_parent"] == "PermissionError"


def test_readable_paths_exclude_task_data_and_the_working_directory(root: str):
    paths = sandbox.readable_paths()
    for path in (root, os.getcwd()):
        assert not any(os.path.realpath(path).startswith(p + os.sep) or os.path.realpath(path) == p for p in paths)


def test_apps_answer_only_public_apis(root: str):
    from idagym.appworld.apps_host import public_routes
    from idagym.appworld.tasks import use_root

    use_root(root)
    routes = public_routes(("spotify", "supervisor", "admin"))

    def allowed(method: str, path: str) -> bool:
        return any(m == method and p.match(path) for m, p in routes)

    assert allowed("post", "/spotify/auth/token") and allowed("get", "/spotify/songs/12")
    assert allowed("post", "/supervisor/message")  # what apis.supervisor.complete_task calls
    assert not allowed("get", "/dbs") and not allowed("post", "/dbs/save") and not allowed("delete", "/dbs/cache")
    assert not any(p.pattern.startswith(r"/admin") for _, p in routes)
    assert not allowed("get", "/spotify/songs/12/../../dbs")
