"""Behaviour figures, each checked on hand-made trajectories whose count is known."""

from __future__ import annotations

import pytest

from idagym.behaviour import (
    behaviour,
    completed_early,
    failed_api_calls,
    read_docs_first,
    repeated_actions,
    went_on_after_exception,
)
from idagym.buffer import Trajectory, Turn

DOC = "print(apis.api_docs.show_api_doc(app_name='venmo', api_name='login'))"
LOGIN = "token = apis.venmo.login(username='a', password='b')"
REFUSED = "Execution failed. Traceback:\n  ...\nException: Response status code is 401:\n{'message': 'Invalid credentials'}"
DONE = "apis.supervisor.complete_task()"


def episode(actions: list[str], outputs: list[str], success: bool = False) -> Trajectory:
    """Turn t shows the output of action t-1; the last output sits in info, as the collector leaves it."""
    shown = ["Task: ..."] + outputs[:-1]
    turns = [Turn(observation=o, response=f"```python\n{a}\n```", action=a) for o, a in zip(shown, actions, strict=True)]
    return Trajectory(task_id="t_1", turns=turns, success=success, info={"last_output": outputs[-1]})


def test_reading_the_doc_first_counts_per_api_and_by_position():
    assert read_docs_first(episode([DOC, LOGIN], ["doc", "ok"])) is True
    assert read_docs_first(episode([f"{DOC}\n{LOGIN}"], ["ok"])) is True  # earlier in the same action
    assert read_docs_first(episode([f"{LOGIN}\n{DOC}"], ["ok"])) is False  # read after the call
    other_doc = DOC.replace("login", "send_money")
    assert read_docs_first(episode([other_doc, LOGIN], ["doc", "ok"])) is False  # another API's doc
    assert read_docs_first(episode(["print(apis.api_docs.show_app_descriptions())", DONE], ["apps", ""])) is None


def test_failed_calls_exceptions_early_completion_and_repeats():
    setback = episode([LOGIN, LOGIN, f"{LOGIN.replace('b', 'c')}\n{DONE}"], [REFUSED, REFUSED, "ok"], success=True)
    assert failed_api_calls(setback) == 2 and went_on_after_exception(setback) and repeated_actions(setback) == 1
    assert not completed_early(setback)
    last_fails = episode([LOGIN], [REFUSED])
    assert failed_api_calls(last_fails) == 1 and not went_on_after_exception(last_fails)  # it did not go on
    guessed = episode(["print(apis.api_docs.show_app_descriptions())", f"{DONE}\n{LOGIN}"], ["apps", ""])
    assert completed_early(guessed)  # complete_task before any app API
    assert not completed_early(episode([LOGIN, DONE], ["ok", ""]))


def test_figures_over_a_set():
    setback = episode([LOGIN, LOGIN, DONE], [REFUSED, REFUSED, ""], success=True)
    careful = episode([DOC, LOGIN, DONE], ["doc", "ok", ""], success=False)
    figures = behaviour([setback, careful])
    assert figures["read_docs_first"] == pytest.approx(0.5)
    assert figures["failed_api_calls_per_episode"] == pytest.approx(1.0)
    assert figures["went_on_after_exception"] == pytest.approx(0.5)
    assert figures["success_after_exception"] == pytest.approx(1.0)
    assert figures["completed_early"] == 0.0 and figures["repeated_actions_per_episode"] == pytest.approx(0.5)
    assert behaviour([careful])["success_after_exception"] is None  # no setback: nothing to count
