"""TRUSTED SIDE: the reward. Scores a finished episode in a process that never ran agent code.

The apps process calls `score` after the episode's sandbox was killed and it saved the end state to
the experiment's output folder. AppWorld's unchanged `evaluate_task` compares the task's start
databases with that end state (read from the apps' memory, as AppWorld's own `evaluate` does; the
same state was just saved, so AppWorld's `evaluate_task` on the saved folder agrees) and runs the
task's tests (the ground truth is read here and only here, once no agent code can run anywhere).
Nothing the sandbox said enters the reward; its only effect on the state is the API calls it made.
"""

from __future__ import annotations


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

