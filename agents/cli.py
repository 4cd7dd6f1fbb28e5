"""`idagym eval`: run an agent on a split and print task/scenario goal completion."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from idagym.devices import check_dtype, resolve_device

BUILTIN_AGENTS = "tiny, tiny-word, smollm2-135m, scripted, null, or a model folder / cached hub id"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("eval", help="evaluate an agent on a split (TGC / SGC)")
    p.add_argument("--env", default=None,
                   help="registered environment id (default: the one a trained model was trained on, else idagym/AppWorld-v0)")
    p.add_argument("--agent", default="scripted", help=BUILTIN_AGENTS)
    p.add_argument("--split", default="dev")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N tasks")
    p.add_argument("--out", default=None, help="write the JSON report here")
    p.add_argument("--max-turns", type=int, default=None, help="turn limit per episode (env default if unset)")
    p.add_argument("--num-envs", type=int, default=1, help="environments run in parallel")
    p.add_argument("--seed", type=int, default=0)
    # None: a trained model's own settings (its idagym_policy.json), else the PolicyConfig defaults
    p.add_argument("--temperature", type=float, default=None, help="0: greedy (default: as trained, else 0)")
    p.add_argument("--top-p", type=float, default=None, help="nucleus mass (default: as trained, else 1)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="per turn (default: as trained, else 512)")
    p.add_argument("--max-context-tokens", type=int, default=None, help="per episode (default: as trained, else 8192)")
    p.add_argument("--appworld-experiment", default=None, metavar="NAME",
                   help="AppWorld: also write AppWorld's own experiment layout (experiments/outputs/NAME/tasks/<id>/"
                        "dbs, logs, evaluation) under the task root, for `appworld evaluate NAME SPLIT`")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    p.add_argument("--dtype", default=None, choices=("float32", "bfloat16", "float16"),
                   help="weight dtype (default: as trained, else float32)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


UNTRAINED = {"temperature": 0.0, "top_p": 1.0, "max_new_tokens": 512, "max_context_tokens": 8192}
FLAGS = ("temperature", "top_p", "max_new_tokens", "max_context_tokens")


def trained_settings(agent: str) -> dict[str, Any] | None:
    """The settings a model folder saved by `idagym train` was trained with (None otherwise)."""
    from idagym.agents.models import load_policy_settings

    return load_policy_settings(agent) if Path(agent).is_dir() else None


def policy_settings(args: argparse.Namespace, saved: dict[str, Any] | None) -> dict[str, Any]:
    """PolicyConfig fields: a trained model's own settings (or the untrained defaults), then any flag given."""
    settings = dict(saved["policy"]) if saved else dict(UNTRAINED)
    settings.update({k: getattr(args, k) for k in FLAGS if getattr(args, k) is not None})
    settings["seed"] = args.seed
    return settings


def model_dtype(args: argparse.Namespace, saved: dict[str, Any] | None) -> str:
    """The --dtype flag, else the dtype the model was trained in, else float32."""
    return args.dtype or (saved or {}).get("dtype", "float32")


def make_agent(args: argparse.Namespace, settings: dict[str, Any] | None = None) -> Any:
    """A policy factory given the env (scripted agents read its solutions, LLMs its APIs/vocabulary)."""
    from idagym.agents.scripted import NullPolicy, ScriptedPolicy

    if args.agent == "scripted":
        return lambda env: ScriptedPolicy(env.unwrapped.solution)
    if args.agent == "null":
        return lambda env: NullPolicy()

    def llm(env: Any) -> Any:
        from idagym.agents.config import ModelConfig, PolicyConfig
        from idagym.agents.hf_policy import TransformersPolicy

        fields = dict(settings or policy_settings(args, None))
        fields.setdefault("action_format", "raw" if env.unwrapped.vocabulary() is not None else "code_block")
        model = ModelConfig(name=args.agent, seed=args.seed, dtype=model_dtype(args, trained_settings(args.agent)))
        return TransformersPolicy.from_config(model, PolicyConfig(**fields), env, device=resolve_device(args.device))

    return llm


def run(args: argparse.Namespace) -> int:
    from idagym.agents.models import ModelNotFoundError
    from idagym.evaluation import evaluate, format_report

    saved = trained_settings(args.agent)
    settings = policy_settings(args, saved)
    env_id = args.env or (saved["env"] if saved else "idagym/AppWorld-v0")
    env_kwargs = dict(saved["env_kwargs"]) if saved and env_id == saved["env"] else {}
    if args.max_turns:
        env_kwargs["max_turns"] = args.max_turns
    if args.appworld_experiment:
        env_kwargs.update(experiment_name=args.appworld_experiment, unique_outputs=False, keep_outputs=True)
    if args.agent not in ("scripted", "null"):
        try:
            check_dtype(resolve_device(args.device), model_dtype(args, saved))
        except ValueError as err:
            print(f"idagym eval: {err}", file=sys.stderr)
            return 2
        shown = ", ".join(f"{k}={settings[k]}" for k in FLAGS) + f", dtype={model_dtype(args, saved)}"
        origin = f"as trained ({Path(args.agent) / 'idagym_policy.json'}), flags override" if saved else "defaults"
        print(f"policy: {shown}; env {env_id} {env_kwargs or ''} ({origin})", flush=True)
    try:
        report = evaluate(
            env_id,
            make_agent(args, settings),
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
    if args.appworld_experiment:
        from idagym.appworld.tasks import suite_root

        print(f"AppWorld experiment: {suite_root() / 'experiments' / 'outputs' / args.appworld_experiment}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2))
    return 0
