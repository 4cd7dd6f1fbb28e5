"""The built-in offline AppWorld suite: counts, splits, determinism, and real-engine runs."""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from idagym.appworld.tasks import (
    SPLITS,
    build_suite,
    format_stats,
    ground_truth_code,
    load_split,
    scenario_id,
    suite_root,
    suite_stats,
    task_templates,
)
from idagym.appworld.tasks.build import plan_tasks
from idagym.appworld.tasks.templates import TEMPLATES
from idagym.appworld.tasks.world import make_world


@pytest.fixture(scope="session")
def root() -> Path:
    # The default cache: built (and verified) once, shared with the rest of the test session.
    root = suite_root()
    if not (root / "data" / "suite.json").exists():
        pytest.skip("APPWORLD_ROOT points at real AppWorld data, not the built-in suite")
    return root


def test_counts(root: Path) -> None:
    stats = suite_stats(root)
    assert stats["num_tasks"] >= 300
    assert stats["num_scenarios"] * 3 == stats["num_tasks"]
    assert stats["num_templates"] >= 24
    assert stats["num_multi_app_templates"] * 3 >= stats["num_templates"]
    assert len(stats["apps"]) >= 6
    assert set(stats["difficulty"]) == {1, 2, 3}
    assert set(stats["kind"]) == {"question", "action"}
    assert sum(stats["splits"].values()) == stats["num_tasks"]
    text = format_stats(stats)
    assert "tasks:" in text and "difficulty:" in text


def test_splits_are_disjoint_by_scenario(root: Path) -> None:
    splits = {name: load_split(name, root) for name in SPLITS}
    scenarios = {name: {scenario_id(t) for t in ids} for name, ids in splits.items()}
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1:]:
            assert not scenarios[a] & scenarios[b], (a, b)
    all_ids = [t for ids in splits.values() for t in ids]
    assert len(all_ids) == len(set(all_ids)) == suite_stats(root)["num_tasks"]
    assert len(splits["train"]) > len(splits["dev"]) > 0 and len(splits["test"]) > 0
    for task_id in all_ids:
        prefix, number = task_id.split("_")
        assert len(prefix) == 7 and int(prefix, 16) >= 0 and number in {"1", "2", "3"}


# Recorded from the suite as built before the challenge split existed (version 1, seed 0):
# (tasks, files, sha256 over every file of train/dev/test, their split files, base_dbs, api_docs).
V1_SPLITS_DIGEST = (342, 6866, "eb7a618f0bfa11854ae150161056130ceab1c36b022fcfbcbca3689810342a13")


def splits_digest(root: Path, splits: tuple[str, ...] = ("train", "dev", "test")
                  ) -> tuple[int, int, str]:
    data = root / "data"
    ids = sorted(t for split in splits for t in load_split(split, root))
    paths = [data / "datasets" / f"{split}.txt" for split in splits]
    for folder in [data / "base_dbs", data / "api_docs", *(data / "tasks" / t for t in ids)]:
        paths += sorted(p for p in folder.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.relative_to(data).as_posix().encode() + b"\0" +
                      hashlib.sha256(path.read_bytes()).digest())
    return len(ids), len(paths), digest.hexdigest()


def test_existing_splits_are_byte_for_byte_those_of_v1(root: Path) -> None:
    # Earlier figures on train/dev/test stay comparable: same task ids, same files, same base.
    assert splits_digest(root) == V1_SPLITS_DIGEST


def challenge_templates() -> list[str]:
    return [t.name for t in TEMPLATES if t.challenge]


def test_challenge_split_is_held_out(root: Path) -> None:
    assert SPLITS == ("train", "dev", "test", "challenge")
    manifest = json.loads((root / "data" / "suite.json").read_text())
    assert manifest["verified"]  # the build ran every task's solution and a do-nothing run
    tasks = manifest["tasks"]
    challenge = load_split("challenge", root)
    assert challenge and {tasks[t]["split"] for t in challenge} == {"challenge"}
    assert {tasks[t]["template"] for t in challenge} == set(challenge_templates())
    elsewhere = {i["template"] for i in tasks.values() if i["split"] != "challenge"}
    assert not elsewhere & set(challenge_templates())
    assert len(challenge_templates()) >= 4
    train_apps = {a for i in tasks.values() if i["split"] == "train" for a in i["apps"]}
    new_apps = [t for t in TEMPLATES if t.challenge and set(t.apps) - train_apps]
    assert len(new_apps) >= 2
    assert {t.difficulty for t in TEMPLATES if t.challenge} <= {2, 3}
    assert {t.kind for t in TEMPLATES if t.challenge} == {"question", "action"}
    assert any(len(t.apps) > 1 for t in TEMPLATES if t.challenge)
    scenarios = {scenario_id(t) for t in challenge}
    assert len(challenge) == 3 * len(scenarios) >= 3 * 2 * len(challenge_templates())
    stats = suite_stats(root)
    assert stats["splits"]["challenge"] == len(challenge)
    assert "challenge" in format_stats(stats)


def test_challenge_tasks_verify_alone(root: Path, tmp_path: Path) -> None:
    # One scenario of each challenge template, built and verified through the real engine on
    # its own. It reproduces the suite's files byte for byte, base_dbs included: the challenge
    # apps' rows travel in the challenge tasks' own dbs.
    small = build_suite(tmp_path / "challenge", templates=challenge_templates(),
                        max_scenarios=1, progress=False)
    assert len(load_split("challenge", small)) == 3 * len(challenge_templates())
    assert load_split("train", small) == []
    files = [p for p in sorted((small / "data").rglob("*")) if p.is_file()
             and p.name != "suite.json" and "datasets" not in p.parts]
    for path in files:
        assert path.read_bytes() == (root / path.relative_to(small)).read_bytes(), path
    task = load_split("challenge", small)[0]
    dbs = small / "data" / "tasks" / task / "dbs"
    assert {p.stem for p in dbs.iterdir() if p.stat().st_size} >= {"gmail", "splitwise", "amazon"}


def test_a_build_of_another_suite_version_is_not_used(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # A cached build without the challenge split is never taken for the current suite.
    import idagym.appworld.tasks as tasks

    monkeypatch.delenv("APPWORLD_ROOT", raising=False)
    monkeypatch.setenv("IDAGYM_CACHE", str(tmp_path))
    stale = tasks._suite_dir()
    (stale / "data" / "tasks").mkdir(parents=True)
    (stale / "data" / "suite.json").write_text(json.dumps({"version": 1, "tasks": {}}))
    with pytest.raises(FileNotFoundError, match="not built"):
        tasks.suite_root(build=False)


def test_unknown_split_is_a_clear_error(root: Path) -> None:
    with pytest.raises(ValueError, match="train"):
        load_split("validation", root)


def test_each_task_knows_its_template(root: Path) -> None:
    templates = task_templates(root)
    assert set(templates.values()) == {t.name for t in TEMPLATES}
    for task_id in load_split("dev", root):  # a scenario is one template's variations
        assert templates[task_id] == templates[scenario_id(task_id) + "_1"]


def test_scenario_id() -> None:
    assert scenario_id("1a2b3c4_2") == "1a2b3c4"
    with pytest.raises(ValueError):
        scenario_id("nounderscore")


def test_same_seed_same_tasks(root: Path) -> None:
    first = plan_tasks(make_world(0), 0)
    second = plan_tasks(make_world(0), 0)
    assert [(t, s.instruction, s.solution, s.answer) for t, _, s, _ in first] == \
        [(t, s.instruction, s.solution, s.answer) for t, _, s, _ in second]
    # The built suite is exactly this plan.
    for task_id, _, spec, _ in first[::25]:
        specs = json.loads((root / "data" / "tasks" / task_id / "specs.json").read_text())
        assert specs["instruction"] == spec.instruction
        assert ground_truth_code(task_id, root) == spec.solution
    other = plan_tasks(make_world(1), 1)
    assert [t for t, *_ in other] != [t for t, *_ in first]


def test_rebuild_is_byte_identical(root: Path, tmp_path: Path) -> None:
    # A subset rebuilt with the same seed reproduces the suite's files byte for byte
    # (base databases, API docs, and those templates' tasks, which keep their ids).
    names = [TEMPLATES[0].name, next(t.name for t in TEMPLATES if len(t.apps) > 1)]
    small = tmp_path / "small"
    build_suite(small, seed=0, verify=False, templates=names, max_scenarios=1, progress=False)
    files = [p for p in sorted(small.rglob("*")) if p.is_file() and p.name != "suite.json"]
    assert len([p for p in files if p.name == "specs.json"]) == 6
    for path in files:
        relative = path.relative_to(small)
        if relative.parts[:2] == ("data", "datasets"):
            continue  # the subset's split differs
        assert path.read_bytes() == (root / relative).read_bytes(), relative


RUNNER = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    from idagym.appworld.tasks import ground_truth_code, use_root
    root, task_ids = Path(sys.argv[1]), sys.argv[2:]
    use_root(root)
    from appworld import AppWorld

    def info(tracker):
        return [tracker.success, tracker.pass_count, tracker.num_tests]

    out = {}
    for task_id in task_ids:
        with AppWorld(task_id, experiment_name="idagym-tests") as world:
            nothing = info(world.evaluate())  # evaluated before any code ran
            world.execute(ground_truth_code(task_id, root))
            out[task_id] = {"nothing": nothing, "solution": info(world.evaluate()),
                            "completed": world.task_completed()}
        with AppWorld(task_id, experiment_name="idagym-tests") as world:
            world.execute("apis.supervisor.complete_task()")
            out[task_id]["no_answer"] = info(world.evaluate())
    print(json.dumps(out))
''')


def test_ground_truth_passes_and_doing_nothing_fails(root: Path, tmp_path: Path) -> None:
    # A question, a single-app action and a 3-app action; AppWorld runs in its own process.
    manifest = json.loads((root / "data" / "suite.json").read_text())["tasks"]
    wanted = [lambda i: i["kind"] == "question",
              lambda i: i["kind"] == "action" and len(i["apps"]) == 1,
              lambda i: i["kind"] == "action" and len(i["apps"]) == 3]
    sample = [next(t for t, info in sorted(manifest.items()) if want(info)) for want in wanted]
    script = tmp_path / "run.py"
    script.write_text(RUNNER)
    done = subprocess.run([sys.executable, str(script), str(root), *sample],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(results) == set(sample)
    for task_id, runs in results.items():
        assert runs["solution"][0] and runs["completed"], (task_id, runs)
        assert not runs["nothing"][0], (task_id, runs)
        assert not runs["no_answer"][0], (task_id, runs)


def test_cli_stats(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from idagym.appworld.tasks.cli import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="verb"))
    args = parser.parse_args(["tasks", "stats", "--root", str(root), "--json"])
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)["num_tasks"] >= 300
    build_args = parser.parse_args(["tasks", "build", "--seed", "2", "--no-verify", "--force"])
    assert build_args.func.__name__ == "_build" and build_args.force and build_args.no_verify
