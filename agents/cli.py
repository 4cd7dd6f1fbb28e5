"""`idagym eval`: run an agent on a split and print task/scenario goal completion."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

BUILTIN_AGENTS = "tiny, tiny-word, smollm2-135m, scripted, null, or a model folder / cached hub id"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("eval", help="evaluate an agent on a split (TGC / SGC)")
    p.add_argument("--env", default="idagym/AppWorld-v0", help="registered environment id")
    p.add_argument("--agent", default="scripted", help=BUILTIN_AGENTS)
    p.add_argument("--split", default="dev")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N tasks")
    p.add_argument("--out", default=None, help="write the JSON report here")
    p.add_argument("--max-turns", type=int, default=None, help="turn limit per episode (env default if unset)")
    p.add_argument("--num-envs", type=int, default=1, help="environments run in parallel")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=0.0, help="0: greedy")
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--max-context-tokens", type=int, default=8192)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def make_agent(args: argparse.Namespace) -> Any:
    """A policy factory given the env (scripted agents read its solutions, LLMs its APIs/vocabulary)."""
    from idagym.agents.scripted import NullPolicy, ScriptedPolicy

    if args.agent == "scripted":
        return lambda env: ScriptedPolicy(env.unwrapped.solution)
    if args.agent == "null":
        return lambda env: NullPolicy()

    def llm(env: Any) -> Any:
        from idagym.agents.config import ModelConfig, PolicyConfig
        from idagym.agents.hf_policy import TransformersPolicy

        one_word = env.unwrapped.vocabulary() is not None
        policy_cfg = PolicyConfig(
            temperature=args.temperature,
            max_new_tokens=args.max_new_tokens,
            max_context_tokens=args.max_context_tokens,
            action_format="raw" if one_word else "code_block",
            seed=args.seed,
        )
        return TransformersPolicy.from_config(ModelConfig(name=args.agent, seed=args.seed), policy_cfg, env)

    return llm


def run(args: argparse.Namespace) -> int:
    from idagym.agents.models import ModelNotFoundError
    from idagym.evaluation import evaluate, format_report

    env_kwargs = {"max_turns": args.max_turns} if args.max_turns else {}
    try:
        report = evaluate(
            args.env,
            make_agent(args),
            args.split,
            limit=args.limit,
            num_envs=args.num_envs,
            env_kwargs=env_kwargs,
            seed=args.seed,
            progress=not args.no_progress,
        )
    except (ModelNotFoundError, ValueError) as err:
        print(f"idagym eval: {err}", file=sys.stderr)
        return 2
    report["agent"] = args.agent
    print(format_report(report))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2))
    return 0
