"""Evaluation (TGC / SGC) and the `idagym eval` command."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
torch.set_num_threads(1)

import idagym  # noqa: E402,F401
from idagym.agents.scripted import NullPolicy, ScriptedPolicy  # noqa: E402
from idagym.buffer import Trajectory, Turn  # noqa: E402
from idagym.cli import main  # noqa: E402
from idagym.evaluation import evaluate, format_report, summarize  # noqa: E402


def test_summarize_task_and_scenario_rates():
    outcomes = {"a_1": 1, "a_2": 1, "a_3": 0, "b_1": 1, "b_2": 1, "c_1": 0}
    trajs = [
        Trajectory(task_id=t, success=bool(s), reward=0.5 + s / 2, truncated=t == "c_1", error="x" if t == "a_3" else None)
        for t, s in outcomes.items()
    ]
    for t in trajs:
        t.turns = [Turn(observation="", action=""), Turn(observation="", action="")]
    report = summarize(trajs, scenario_fn=lambda task_id: task_id.split("_")[0])
    assert report["tgc"] == pytest.approx(4 / 6) and report["sgc"] == pytest.approx(1 / 3)
    assert report["num_scenarios"] == 3 and report["mean_reward"] == pytest.approx(5 / 6)
    assert report["mean_turns"] == 2 and report["errors"] == 1 and report["truncated"] == 1
    table = format_report(report)
    assert "| task goal completion (TGC) | 66.7 [95% CI 30.0-90.3] |" in table
    assert "| scenario goal completion (SGC) | 33.3 [95% CI 6.1-79.2] (3 scenarios) |" in table
    assert report["by_difficulty"] == {}  # the env grades no tasks


def test_summarize_per_difficulty_level():
    outcomes = {"a_1": 1, "a_2": 0, "b_1": 1, "c_1": 1}
    levels = {"a": 2, "b": 1, "c": 2}
    trajs = [Trajectory(task_id=t, success=bool(s)) for t, s in outcomes.items()]
    report = summarize(trajs, scenario_fn=lambda t: t.split("_")[0], difficulty_fn=lambda t: levels[t.split("_")[0]])
    one, two = report["by_difficulty"]["1"], report["by_difficulty"]["2"]
    assert (one["tasks"], one["tgc"], one["scenarios"], one["sgc"]) == (1, 1.0, 1, 1.0)
    assert (two["tasks"], two["tgc"], two["scenarios"], two["sgc"]) == (3, pytest.approx(2 / 3), 2, 0.5)
    assert "| difficulty 2 (3 tasks): TGC / SGC | 66.7 [95% CI" in format_report(report)


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


def test_wilson_interval():
    from idagym.evaluation import wilson_interval

    lo, hi = wilson_interval(20, 40)
    assert lo < 0.5 < hi and round(lo, 3) == 0.352 and round(hi, 3) == 0.648
    assert wilson_interval(0, 40)[0] == 0.0 and wilson_interval(0, 40)[1] > 0.05
    assert wilson_interval(40, 40)[1] == 1.0 and wilson_interval(0, 0) == (0.0, 1.0)


def test_a_trained_model_is_evaluated_as_it_was_trained(tmp_path):
    """`idagym eval --agent RUN/model` with no flags uses the training settings (one-word raw actions,
    one new token) and scores what the trainer's last evaluation measured, within its interval."""
    import subprocess
    import sys

    from idagym.evaluation import wilson_interval

    root = Path(__file__).parent.parent
    run_dir, out = tmp_path / "run", tmp_path / "report.json"
    cli = [sys.executable, "-m", "idagym.cli"]
    subprocess.run([*cli, "train", "examples/configs/lookup_sft.yaml", f"run_dir={run_dir}", "progress=false"],
                   cwd=root, check=True, timeout=300, capture_output=True)
    last = [json.loads(line) for line in (run_dir / "eval.jsonl").read_text().splitlines()][-1]
    shown = subprocess.run([*cli, "eval", "--agent", str(run_dir / "model"), "--split", "dev", "--out", str(out),
                            "--no-progress"], cwd=root, check=True, timeout=300, capture_output=True, text=True).stdout
    assert "max_new_tokens=1" in shown and "as trained" in shown and "idagym/Lookup-v0" in shown
    lo, hi = wilson_interval(round(last["success_rate"] * last["episodes"]), last["episodes"])
    assert lo <= json.loads(out.read_text())["tgc"] <= hi, (last, shown)


def test_appworld_experiment_layout_scores_the_same_with_appworld_itself(root: str):
    """Eval outputs in AppWorld's own experiment layout: AppWorld's evaluator, run on them in a fresh
    process, gives the TGC and SGC that idagym reported."""
    import subprocess
    import sys
    import uuid

    from idagym.appworld.tasks import ground_truth_code, load_split
    from idagym.evaluation import evaluate

    name = f"idagym-test-{uuid.uuid4().hex[:8]}"
    tasks = load_split("dev", root=root)[:6]
    solved = set(tasks[:4])  # solve some tasks only, so that both figures are strictly between 0 and 1
    policy = ScriptedPolicy(lambda t: [ground_truth_code(t, root=root)] if t in solved else ["apis.supervisor.complete_task()"])
    report = evaluate("idagym/AppWorld-v0", policy, "dev", limit=6, num_envs=2, progress=False,
                      env_kwargs={"experiment_name": name, "unique_outputs": False, "keep_outputs": True})
    script = (
        "import json, sys\nfrom idagym.appworld.tasks import use_root\nuse_root(sys.argv[1])\n"
        "from appworld.evaluator import evaluate_tasks\n"
        "m = evaluate_tasks(json.loads(sys.argv[2]), experiment_name=sys.argv[3], save_reports=False)\n"
        "print(json.dumps(m['aggregate']))"
    )
    try:
        out = subprocess.run([sys.executable, "-c", script, root, json.dumps(tasks), name], capture_output=True, text=True,
                             check=True, timeout=300).stdout
    finally:
        import shutil

        shutil.rmtree(Path(root, "experiments", "outputs", name), ignore_errors=True)
    theirs = json.loads(out.strip().splitlines()[-1])
    assert 0 < report["tgc"] < 1 and report["tgc"] == pytest.approx(4 / 6)
    assert theirs["task_goal_completion"] == pytest.approx(100 * report["tgc"], abs=0.05)  # AppWorld rounds to 0.1
    assert theirs["scenario_goal_completion"] == pytest.approx(100 * report["sgc"], abs=0.05)
