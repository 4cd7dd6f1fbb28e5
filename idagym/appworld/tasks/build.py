"""Build the offline suite in AppWorld's on-disk format, then verify it with the real engine.

Layout written under ``<root>/data`` (what ``AppWorld(task_id)`` reads):
  base_dbs/<app>.db                full databases of the world, shared by every task
  api_docs/standard/<app>.json     the API docs the agent can look up
  tasks/<id>/specs.json            instruction, supervisor, datetime, db_version
  tasks/<id>/dbs/<app>.jsonl       only the SQL changes on top of base_dbs ("changes" format, as
                                   real AppWorld tasks ship): here, the supervisor.Task row
  tasks/<id>/ground_truth/         answer, tests, evaluation.py, metadata, solution_code.py
  datasets/{train,dev,test}.txt    split by scenario
  datasets/challenge.txt           the challenge templates' tasks (no train task shares a
                                   template); their dbs/ also hold the rows of the apps only they
                                   use, so base_dbs and the other splits' files stay as they were
  suite.json                       manifest: seed, per-task template / apps / kind / split
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import random
import shutil
import time
from pathlib import Path
from typing import Any

from idagym.appworld.tasks import SPLITS, SUITE_VERSION
from idagym.appworld.tasks.templates import TEMPLATES, TaskSpec, Template
from idagym.appworld.tasks.world import (
    WORLD_DATETIME,
    World,
    make_world,
    populate,
    populate_challenge,
)

TASKS_PER_SCENARIO = 3
MAX_SCENARIOS_PER_TEMPLATE = 4
SPLIT_FRACTIONS = (("train", 0.6), ("dev", 0.2), ("test", 0.2))
VERIFY_EXPERIMENT = "idagym-suite-verify"

EVALUATION_HEADER = '''\
import json


def evaluate(test, public_data, private_data, main_user, models, ground_truth_answer):
'''


class SuiteBuildError(RuntimeError):
    """A template produced a task that the real engine does not judge as intended."""


def scenario_hex(seed: int, template: str, index: int) -> str:
    return hashlib.sha1(f"idagym-{seed}-{template}-{index}".encode()).hexdigest()[:7]


def plan_tasks(world: World, seed: int, templates: list[Template] | None = None,
               max_scenarios: int = MAX_SCENARIOS_PER_TEMPLATE
               ) -> list[tuple[str, Template, TaskSpec, dict]]:
    """Every task of the suite as (task_id, template, spec, params), in a fixed order."""
    planned = []
    for tpl in templates or TEMPLATES:
        space = tpl.space(world)
        rng = random.Random(f"idagym-{seed}-{tpl.name}")
        rng.shuffle(space)  # unique parameter sets: no two tasks of a template are the same
        n = min(max_scenarios, len(space) // TASKS_PER_SCENARIO)
        if n == 0:
            raise SuiteBuildError(f"template {tpl.name} has fewer than 3 parameter sets")
        for k in range(n):
            sid = scenario_hex(seed, tpl.name, k)
            for j in range(TASKS_PER_SCENARIO):
                params = space[k * TASKS_PER_SCENARIO + j]
                planned.append((f"{sid}_{j + 1}", tpl, tpl.make(world, params), params))
    return planned


def split_scenarios(scenarios: list[str], seed: int, challenge: tuple[str, ...] = ()
                    ) -> dict[str, str]:
    """Scenario -> split: ``challenge`` ones to the challenge split, the rest by fraction."""
    order = sorted(scenarios)
    random.Random(f"idagym-split-{seed}").shuffle(order)
    out, start = {}, 0
    for i, (name, fraction) in enumerate(SPLIT_FRACTIONS):
        end = len(order) if i == len(SPLIT_FRACTIONS) - 1 else start + round(fraction * len(order))
        for sid in order[start:end]:
            out[sid] = name
        start = end
    return out | {sid: "challenge" for sid in challenge}


def evaluation_code(spec: TaskSpec, kind: str) -> tuple[str, list[dict]]:
    """AppWorld-style evaluate(): answer / collateral tests first, then the template's checks."""
    tests: list[tuple[str, str, str]] = []
    if kind == "question":
        tests.append(("assert answers match.",
                      "answer = json.loads(models.end.supervisor.Task.all()[0].answer)\n"
                      "test.answer(answer, ground_truth_answer)\n", "no_op_fail"))
        tests.append(("assert no model changes.",
                      'test.case(models.changed_model_names(), "==", set())\n', "no_op_pass"))
    else:
        tests.append((f"assert model changes match {', '.join(sorted(spec.changed))}.",
                      f'test.case(models.changed_model_names(), "==", {sorted(spec.changed)!r})\n'
                      .replace("[", "{").replace("]", "}"), "no_op_fail"))
        tests += [(req, body, "no_op_fail") for req, body in spec.checks]
    lines = [EVALUATION_HEADER]
    for requirement, body, _ in tests:
        lines.append(f'    with test("""{requirement}"""):\n')
        lines += ["        " + line + "\n" for line in body.rstrip().splitlines()]
    test_data = [{"requirement": r, "label": label} for r, _, label in tests]
    return "".join(lines), test_data


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, default=str))


def write_base(data: Path, world: World) -> None:
    """Base databases and API docs, through the appworld package's own models."""
    from appworld.apps import get_all_apps
    from appworld.collections.api_docs import ApiDocCollection
    from appworld.collections.models import ModelCollection
    from appworld.common.constants import CANARY_STRING
    from freezegun import freeze_time

    models = ModelCollection.load(to_db_home_path=":memory:idagym-base",
                                  from_db_home_path=":memory:idagym-base",
                                  load_apps=get_all_apps(), create_db=True)
    docs = ApiDocCollection.build(include_response_schemas=True)
    # Freeze the clock so default timestamps (DateTime.now) are the same on every build.
    with freeze_time(WORLD_DATETIME):
        populate(world, models)
        for app, name_to_doc in docs.items():
            for api_name, doc in name_to_doc.items():
                models.api_docs.ApiDoc.create_save(
                    app_name_=app, api_name=api_name, path=doc["path"], method=doc["method"],
                    description=doc["description"], parameters=doc["parameters"],
                    response_schemas=doc["response_schemas"])
    models.save(db_home_path=str(data / "base_dbs"), format="full")
    models.close()
    standard = data / "api_docs" / "standard"
    standard.mkdir(parents=True)
    for app, name_to_doc in docs.items():
        _write_json(standard / f"{app}.json",
                    {name: {**doc, "canary_string": CANARY_STRING}
                     for name, doc in name_to_doc.items()})


def write_tasks(data: Path, world: World, planned: list, splits: dict[str, str]) -> dict:
    from appworld.apps import get_all_apps
    from appworld.collections.models import ModelCollection
    from appworld.common.constants import CANARY_STRING, DB_VERSION
    from freezegun import freeze_time

    # Task dbs are the tracked SQL changes on top of base_dbs: load base into memory, record
    # the insertion of the task row, save as "changes", undo, repeat.
    models = ModelCollection.load(to_db_home_path=":memory:idagym-tasks",
                                  from_db_home_path=str(data / "base_dbs"),
                                  load_apps=get_all_apps())
    supervisor_row = models.supervisor.Supervisor.first()
    sup = world.supervisor
    manifest: dict[str, Any] = {}
    # Challenge tasks last: their world adds the challenge apps' rows, recorded once and
    # replayed into each of their dbs before the task row.
    planned = sorted(planned, key=lambda t: t[1].challenge)
    extra: dict[str, list] | None = None
    for task_id, tpl, spec, params in planned:
        if tpl.challenge and extra is None:
            models.restart_db_tracker()
            with freeze_time(WORLD_DATETIME):
                populate_challenge(world, models)
            extra = models.get_tracked_db_changes()
        folder = data / "tasks" / task_id
        gt = folder / "ground_truth"
        gt.mkdir(parents=True)
        _write_json(folder / "specs.json", {
            "instruction": spec.instruction,
            "supervisor": {"first_name": sup.first_name, "last_name": sup.last_name,
                           "email": sup.email, "phone_number": sup.phone_number},
            "datetime": WORLD_DATETIME.isoformat(), "db_version": DB_VERSION,
            "canary_string": CANARY_STRING})
        models.restart_db_tracker()
        for app, changes in (extra or {}).items():
            models[app].SQLModel.db.tracker.add_changes(changes)  # extends a fresh list
        row = models.supervisor.Task.create_save(supervisor_id=supervisor_row.id,
                                                 instruction=spec.instruction)
        models.save(db_home_path=str(folder / "dbs"), format="changes",
                    app_names=get_all_apps())
        row.delete()
        evaluation, test_data = evaluation_code(spec, tpl.kind)
        (gt / "evaluation.py").write_text(evaluation)
        (gt / "solution_code.py").write_text(spec.solution)
        _write_json(gt / "test_data.json", test_data)
        _write_json(gt / "answer.json", spec.answer)
        _write_json(gt / "public_data.json", {})
        _write_json(gt / "private_data.json", spec.private_data)
        num_calls = spec.solution.count("apis.")
        _write_json(gt / "metadata.json", {
            "difficulty": tpl.difficulty, "num_apps": len(tpl.apps),
            "num_apis": len(set(_apis(spec.solution))), "num_api_calls": num_calls,
            "num_solution_code_lines": len(spec.solution.splitlines()),
            "template": tpl.name, "apps": list(tpl.apps), "kind": tpl.kind})
        manifest[task_id] = {"template": tpl.name, "apps": list(tpl.apps), "kind": tpl.kind,
                             "difficulty": tpl.difficulty, "split": splits[task_id[:7]],
                             "params": params}
    models.close()
    return manifest


def _apis(code_: str) -> list[str]:
    import re
    return re.findall(r"apis\.(\w+\.\w+)", code_)


def _tracker_info(tracker: Any) -> dict:
    return {"success": tracker.success, "pass": tracker.pass_count,
            "num_tests": tracker.num_tests,
            "failures": [f["requirement"] + "\n" + f["trace"][-800:] for f in tracker.failures]}


def _verify_chunk(args: tuple[str, list[str]]) -> list[dict]:
    """Worker: run each task's solution and a do-nothing run through the real engine."""
    root, task_ids = args
    from idagym.appworld.tasks import use_root
    use_root(Path(root))
    from appworld import AppWorld

    results = []
    for task_id in task_ids:
        solution = (Path(root) / "data" / "tasks" / task_id / "ground_truth" /
                    "solution_code.py").read_text()
        outcome: dict[str, Any] = {"task_id": task_id}
        # One world per task: evaluating before any code ran is the do-nothing run (AppWorld
        # evaluates the live in-memory state), then the solution runs and is evaluated.
        world = AppWorld(task_id, experiment_name=VERIFY_EXPERIMENT)
        try:
            outcome["null"] = _tracker_info(world.evaluate())
            output = world.execute(solution)
            outcome["solution"] = _tracker_info(world.evaluate())
            outcome["solution"].update(completed=world.task_completed(), output=output[-1500:])
        finally:
            world.close()
        outcome["ok"] = (outcome["solution"]["success"] and outcome["solution"]["completed"]
                         and not outcome["null"]["success"])
        results.append(outcome)
    return results


def verify(root: Path, task_ids: list[str], workers: int = 2, progress: bool = True
           ) -> list[dict]:
    """Verify tasks in ``workers`` processes (AppWorld allows one open world per process)."""
    chunk = 6
    chunks = [(str(root), task_ids[i:i + chunk]) for i in range(0, len(task_ids), chunk)]
    results: list[dict] = []
    ctx = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited AppWorld state
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(task_ids), desc="verifying tasks", unit="task")
    with ctx.Pool(max(1, workers)) as pool:
        for part in pool.imap_unordered(_verify_chunk, chunks):
            results += part
            if bar is not None:
                bar.update(len(part))
    if bar is not None:
        bar.close()
    shutil.rmtree(root / "experiments", ignore_errors=True)
    return sorted(results, key=lambda r: r["task_id"])


def build_into(root: Path, seed: int = 0, verify_tasks: bool = True, workers: int = 2,
               templates: list[str] | None = None, max_scenarios: int = MAX_SCENARIOS_PER_TEMPLATE,
               progress: bool = True) -> dict:
    """Build the whole suite into an empty ``root``; returns the manifest. Not atomic."""
    start = time.perf_counter()
    data = root / "data"
    (data / "datasets").mkdir(parents=True)
    world = make_world(seed)
    chosen = [t for t in TEMPLATES if templates is None or t.name in templates]
    if templates is not None and len(chosen) != len(set(templates)):
        known = sorted(t.name for t in TEMPLATES)
        raise ValueError(f"unknown template in {templates}; known: {known}")
    planned = plan_tasks(world, seed, chosen, max_scenarios)
    scenarios = {True: set(), False: set()}
    for tid, tpl, *_ in planned:
        scenarios[tpl.challenge].add(tid[:7])
    splits = split_scenarios(sorted(scenarios[False]), seed, tuple(sorted(scenarios[True])))
    write_base(data, world)
    manifest = write_tasks(data, world, planned, splits)
    for split in SPLITS:
        ids = [tid for tid, info in manifest.items() if info["split"] == split]
        (data / "datasets" / f"{split}.txt").write_text("".join(f"{t}\n" for t in ids))
    build_seconds = time.perf_counter() - start
    if verify_tasks:
        results = verify(root, list(manifest), workers=workers, progress=progress)
        bad = [r for r in results if not r["ok"]]
        if bad:
            (root / "verify_failures.json").write_text(json.dumps(bad, indent=1))
            first = bad[0]
            raise SuiteBuildError(
                f"{len(bad)} of {len(results)} tasks failed verification (details in "
                f"{root / 'verify_failures.json'}); first: {first['task_id']} "
                f"({manifest[first['task_id']]['template']}): "
                f"{json.dumps({k: first[k] for k in ('solution', 'null')})[:3000]}")
    _write_json(data / "suite.json", {
        "version": SUITE_VERSION, "seed": seed, "verified": verify_tasks,
        "build_seconds": round(build_seconds, 1),
        "total_seconds": round(time.perf_counter() - start, 1), "tasks": manifest})
    return manifest
