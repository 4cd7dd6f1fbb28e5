"""JSON messages over a pipe, for every channel that an untrusted sandbox can write to.

Never pickle: unpickling runs code, so a sandbox that could send a pickle could run code in the
trusted process that reads it. Messages are size-limited, so a sandbox cannot exhaust its memory.
"""

from __future__ import annotations

import json
from multiprocessing.connection import Connection
from typing import Any

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class WireError(RuntimeError):
    """The other side sent something that is not a well-formed message (or nothing at all)."""


def send(conn: Connection, message: Any) -> None:
    conn.send_bytes(json.dumps(message).encode("utf-8", "replace"))


def recv(conn: Connection, max_bytes: int = MAX_MESSAGE_BYTES) -> Any:
    """The next message; WireError when the pipe closed or the message is too big or not JSON."""
    try:
        data = conn.recv_bytes(max_bytes)
    except (EOFError, OSError) as err:  # OSError: over max_bytes, or the pipe broke
        raise WireError(f"pipe closed or message too large: {err or type(err).__name__}") from None
    try:
        return json.loads(data)
    except ValueError:
        raise WireError("message is not JSON") from None
