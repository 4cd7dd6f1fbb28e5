"""CLI verbs for environments: `idagym envs`, `idagym play`, `idagym serve`."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

END_MARKER = "/"

PLAY_HELP = f"""\
Type Python code for the environment. A line holding only {END_MARKER!r} runs what you typed
(multi-line code is fine); Ctrl-D (end of input) runs what is pending and ends the episode.
The session ends with the evaluation report: which of the task's tests passed and failed."""


def _describe(env_id: str) -> str:
    import gymnasium as gym

    entry = gym.registry[env_id].entry_point
    if isinstance(entry, str):
        entry = gym.envs.registration.load_env_creator(entry)
    doc = (entry.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def cmd_envs(args: argparse.Namespace) -> int:
    import idagym

    ids = idagym.idagym_env_ids()
    width = max((len(i) for i in ids), default=0)
    for env_id in ids:
        print(f"{env_id:<{width}}  {_describe(env_id)}")
    return 0


def _read_action(stream: TextIO) -> str | None:
    """Lines up to the end marker; None at end of input with nothing pending."""
    lines: list[str] = []
    while True:
        line = stream.readline()
        if not line:
            return "\n".join(lines) if lines else None
        if line.rstrip("\r\n").strip() == END_MARKER:
            return "\n".join(lines)
        lines.append(line.rstrip("\r\n"))


def cmd_play(args: argparse.Namespace) -> int:
    import gymnasium as gym

    import idagym  # noqa: F401 - registers the environments

    if args.env not in gym.registry:
        print(f"error: unknown environment {args.env!r}; see `idagym envs`", file=sys.stderr)
        return 2
    kwargs: dict = {"split": args.split}
    if args.max_turns is not None:
        kwargs["max_turns"] = args.max_turns
    if args.root is not None:
        kwargs["root"] = args.root
    env = gym.make(args.env, **kwargs)
    try:
        options = {"task_id": args.task} if args.task else None
        obs, info = env.reset(seed=args.seed, options=options)
        print(f"[{args.env} task {info['task_id']}]\n{obs}\n\n{PLAY_HELP}\n", flush=True)
        done, info = False, {}
        while not done:
            print(f"--- turn {env.unwrapped.turn + 1} (end with {END_MARKER!r}) ---", flush=True)
            code = _read_action(sys.stdin)
            if code is None:
                break
            obs, reward, terminated, truncated, info = env.step(code)
            print(obs, flush=True)
            done = terminated or truncated
        if done:
            status = "terminated" if terminated else f"truncated{': ' + info['error'] if 'error' in info else ''}"
            print(f"\n=== episode {status}; reward {reward:.3f} ===\n{info['evaluation']}")
        else:  # input ended before the episode did: show how the world stands now
            print(f"\n=== input ended before the episode; evaluation so far ===\n{env.unwrapped.evaluate().report()}")
    finally:
        env.close()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from idagym.appworld.server import serve

    print(f"AppWorld environment server on http://{args.host}:{args.port} (Ctrl-C stops it)", flush=True)
    try:
        serve(host=args.host, port=args.port, root=args.root)
    except KeyboardInterrupt:
        pass
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the `envs`, `play` and `serve` verbs."""
    p = subparsers.add_parser("envs", help="list the registered idagym environments")
    p.set_defaults(func=cmd_envs)

    p = subparsers.add_parser(
        "play", help="play an environment by typing code", description=PLAY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--env", default="idagym/AppWorld-v0", help="environment id (see `idagym envs`)")
    p.add_argument("--task", default=None, help="task id; default: sampled from the split")
    p.add_argument("--split", default="dev", help="split to sample the task from (default: dev)")
    p.add_argument("--seed", type=int, default=None, help="seed for sampling the task")
    p.add_argument("--max-turns", type=int, default=None, help="turn limit (default: the environment's)")
    p.add_argument("--root", default=None, help="AppWorld: APPWORLD_ROOT to take tasks from (default: the task suite's)")
    p.set_defaults(func=cmd_play)

    p = subparsers.add_parser("serve", help="serve AppWorld's environment server for remote_url mode")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--root", default=None, help="APPWORLD_ROOT to serve (default: the task suite's)")
    p.set_defaults(func=cmd_serve)
