"""`idagym tasks build|stats`: build the offline AppWorld suite, or count what is there."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def _build(args: argparse.Namespace) -> int:
    from idagym.appworld.tasks import build_suite, format_stats, suite_stats

    start = time.perf_counter()
    root = build_suite(root=Path(args.root) if args.root else None, seed=args.seed,
                       verify=not args.no_verify, workers=args.workers, force=args.force)
    print(f"suite ready at {root} ({time.perf_counter() - start:.0f} s)")
    print(format_stats(suite_stats(root)))
    return 0


def _stats(args: argparse.Namespace) -> int:
    from idagym.appworld.tasks import format_stats, suite_root, suite_stats

    root = Path(args.root) if args.root else suite_root(build=not args.no_build)
    stats = suite_stats(root)
    print(json.dumps(stats, indent=1) if args.json else format_stats(stats))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tasks", help="the AppWorld task suite (built-in offline suite)")
    verbs = parser.add_subparsers(dest="tasks_verb", metavar="SUBVERB")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])

    build = verbs.add_parser("build", help="build and verify the built-in offline suite")
    build.add_argument("--seed", type=int, default=0, help="world and task seed (default 0)")
    build.add_argument("--root", help="folder to build into (default: the cache folder)")
    build.add_argument("--no-verify", action="store_true",
                       help="skip running every task's solution through AppWorld")
    build.add_argument("--force", action="store_true", help="rebuild even if already built")
    build.add_argument("--workers", type=int, default=2, help="verification processes")
    build.set_defaults(func=_build)

    stats = verbs.add_parser("stats", help="counts per split, app, difficulty and kind")
    stats.add_argument("--root", help="an APPWORLD_ROOT folder (default: suite_root())")
    stats.add_argument("--no-build", action="store_true", help="fail instead of building")
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(func=_stats)
