"""Serve AppWorld's own environment server (`appworld.serve.environment.app`) on a local port.

`AppWorldEnv(remote_url="http://127.0.0.1:PORT")` talks to it, so AppWorld can live in its own
virtualenv (it pins pydantic<2) while the trainer's venv does not import it. The server holds one
world at a time: run one server per environment. AppWorld's own `appworld serve environment`
binds every interface (0.0.0.0); this binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import os


def serve(host: str = "127.0.0.1", port: int = 8000, root: str | os.PathLike | None = None) -> None:
    """Run the server in this process until interrupted; `root` defaults to the task suite's root."""
    from idagym.tasks import suite_root, use_root

    use_root(root if root is not None else suite_root())
    import uvicorn
    from appworld.serve.environment import app

    # Endpoints are `async def`, so AppWorld runs on the event loop's (main) thread, where its
    # SIGALRM execution timeout works.
    uvicorn.run(app, host=host, port=port, log_level="warning")
    # Like AppWorld's own runner: skip interpreter teardown, which can hang on the open world.
    os._exit(0)
