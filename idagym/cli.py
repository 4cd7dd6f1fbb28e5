"""The `idagym` command line: one verb per job; each verb's code is imported only when used."""

from __future__ import annotations

import argparse
import importlib
import sys

# verb -> module whose `add_parser(subparsers)` defines it (sets `func(args) -> int`)
VERBS = {
    "train": "idagym.algorithms.cli",
    "compare": "idagym.algorithms.cli",
    "eval": "idagym.agents.cli",
    "tasks": "idagym.appworld.tasks.cli",
    "envs": "idagym.env_cli",
    "play": "idagym.env_cli",
    "serve": "idagym.env_cli",
    "show": "idagym.show",
    "vllm": "idagym.agents.vllm_backend",
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="idagym", description="RL for interactive LLM agents in digital environments")
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB")
    wanted = [a for a in argv if a in VERBS][:1]
    modules = {VERBS[wanted[0]]} if wanted else dict.fromkeys(VERBS.values())
    for module in modules:
        importlib.import_module(module).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # like `python -m`: user env modules in the current folder import by name
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    from idagym.algorithms.ranks import end_rank_process, world_size

    if world_size() == 1:
        sys.exit(main())
    try:  # one of several ranks
        code = main()
    except BaseException:  # noqa: BLE001 - reported like the interpreter would, then the rank ends
        import traceback

        traceback.print_exc()
        code = 1
    end_rank_process(code)
