"""TRUSTED SIDE: the reward. Scores a finished episode in a fresh process that never ran agent code.

The scorer is forked from the worker's clean parent after the episode's sandbox was killed and the
apps process saved the end state. It runs AppWorld's unchanged `evaluate_task`, which, with no world
open in the process, compares the task's start databases with the end state saved in the
experiment's output folder and runs the task's tests (the ground truth is read here and only here).
Nothing the sandbox said enters the reward.
"""

from __future__ import annotations

from multiprocessing.connection import Connection

from idagym.appworld import wire


def score(task_id: str, experiment_name: str) -> dict:
    """Pass count, test count and the tests' requirements, passed and failed."""
    from appworld.evaluator import evaluate_task

    tracker = evaluate_task(task_id=task_id, experiment_name=experiment_name, suppress_errors=True)
    return {
        "pass_count": tracker.pass_count,
        "num_tests": tracker.num_tests,
        "passes": [p["requirement"] for p in tracker.passes],
        "failures": [f["requirement"] for f in tracker.failures],
    }


def run(task_id: str, conn: Connection, experiment_name: str) -> None:
    wire.send(conn, score(task_id, experiment_name))
