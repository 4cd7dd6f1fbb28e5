"""Evaluation (TGC / SGC) and the `idagym eval` command."""

from __future__ import annotations

import json
import os

import pytest
import torch

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
torch.set_num_threads(1)

import idagym  # noqa: E402,F401
from idagym.agents.scripted import NullPolicy, ScriptedPolicy  # noqa: E402
from idagym.buffer import Trajectory  # noqa: E402
from idagym.cli import main  # noqa: E402
from idagym.evaluation import evaluate, format_report, summarize  # noqa: E402


def test_summarize_task_and_scenario_rates():
    outcomes = {"a_1": 1, "a_2": 1, "a_3": 0, "b_1": 1, "b_2": 1, "c_1": 0}
    trajs = [
        Trajectory(task_id=t, success=bool(s), reward=0.5 + s / 2, truncated=t == "c_1", error="x" if t == "a_3" else None)
        for t, s in outcomes.items()
    ]
    for t in trajs:
        t.turns = [None] * 2
    report = summarize(trajs, scenario_fn=lambda task_id: task_id.split("_")[0])
    assert report["tgc"] == pytest.approx(4 / 6) and report["sgc"] == pytest.approx(1 / 3)
    assert report["num_scenarios"] == 3 and report["mean_reward"] == pytest.approx(5 / 6)
    assert report["mean_turns"] == 2 and report["errors"] == 1 and report["truncated"] == 1
    table = format_report(report)
    assert "| task goal completion (TGC) | 66.7 |" in table and "| scenario goal completion (SGC) | 33.3 (3 scenarios) |" in table


def test_evaluate_lookup_scripted_and_null():
    good = evaluate("idagym/Lookup-v0", lambda env: ScriptedPolicy(env.unwrapped.solution), "dev", progress=False)
    assert good["tgc"] == 1.0 and good["sgc"] == 1.0 and good["num_tasks"] == 8 and good["mean_turns"] == 2
    bad = evaluate("idagym/Lookup-v0", NullPolicy("read"), "dev", limit=3, num_envs=2, progress=False)
    assert bad["tgc"] == 0.0 and bad["num_tasks"] == 3 and bad["truncated"] == 3


def test_cli_eval_prints_markdown_and_writes_json(tmp_path, capsys):
    out = tmp_path / "report.json"
    rc = main(["eval", "--env", "idagym/Lookup-v0", "--agent", "tiny-word", "--max-new-tokens", "2",
               "--limit", "4", "--num-envs", "4", "--out", str(out), "--no-progress", "--max-turns", "2"])
    assert rc == 0
    assert "| tasks | 4 |" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["agent"] == "tiny-word" and len(report["tasks"]) == 4
    assert all(t["turns"] <= 2 for t in report["tasks"])


def test_cli_eval_missing_model_is_one_line(capsys):
    rc = main(["eval", "--env", "idagym/Lookup-v0", "--agent", "/no/such/model", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "/no/such/model" in err


@pytest.mark.slow
def test_appworld_dev_scripted_solves_all_and_null_solves_none(root):
    env_kwargs = {"max_turns": 5}
    good = evaluate("idagym/AppWorld-v0", lambda env: ScriptedPolicy(env.unwrapped.solution), "dev",
                    num_envs=2, env_kwargs=env_kwargs, progress=False)
    assert good["num_tasks"] > 0
    assert [t["task_id"] for t in good["tasks"] if t["reward"] != 1.0] == []
    assert good["tgc"] == 1.0 and good["sgc"] == 1.0 and good["errors"] == 0
    bad = evaluate("idagym/AppWorld-v0", NullPolicy(), "dev", num_envs=2, env_kwargs=env_kwargs, progress=False)
    assert bad["tgc"] == 0.0 and bad["sgc"] == 0.0 and bad["errors"] == 0
    assert all(t["terminated"] and t["turns"] == 1 for t in bad["tasks"])
