"""The reward cannot be forged: agent code that tries to cheat earns exactly what an honest no-op earns
on the same task, and the next episode on the same env behaves as on a fresh one.

Tests are grouped by exploit class. Each hack prints a marker, so a test also shows that the hack
really ran (a hack that never executes would prove nothing). The env is made through the registry
only, so the same file runs against any version of the environment.
"""

from __future__ import annotations

import json
import os
import time

import gymnasium as gym
import pytest

import idagym  # noqa: F401 - registers the environments

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

NOOP = "apis.supervisor.complete_task()"


@pytest.fixture(scope="module")
def env():
    env = gym.make("idagym/AppWorld-v0", max_turns=6, step_timeout_s=6.0).unwrapped
    yield env
    env.close()


def _tasks(env, kind: str) -> list[str]:
    infos = json.loads(open(os.path.join(env.root, "data", "suite.json")).read())["tasks"]
    return sorted(t for t, i in infos.items() if i["kind"] == kind and i["split"] == "train")


@pytest.fixture(scope="module")
def question(env) -> str:
    return _tasks(env, "question")[0]


@pytest.fixture(scope="module")
def action(env) -> str:
    return _tasks(env, "action")[0]


def episode(env, task_id: str, actions: list[str], pause_s: float = 0.0) -> tuple[list[str], float, dict]:
    """Play `actions` (pausing between them); the outputs, the final reward and info."""
    env.reset(options={"task_id": task_id})
    outputs, reward, info = [], 0.0, {}
    for i, code in enumerate(actions):
        if i and pause_s:
            time.sleep(pause_s)
        obs, reward, terminated, truncated, info = env.step(code)
        outputs.append(obs)
        if terminated or truncated:
            break
    if "num_tests" not in info:  # the actions did not end the episode: end it honestly
        obs, reward, _, _, info = env.step(NOOP)
        outputs.append(obs)
    return outputs, reward, info


_baselines: dict[str, tuple[float, str]] = {}


def baseline(env, task_id: str) -> tuple[float, str]:
    """Reward and evaluation report of an honest no-op on `task_id` (measured once, first)."""
    if task_id not in _baselines:
        _, reward, info = episode(env, task_id, [NOOP])
        _baselines[task_id] = (reward, info["evaluation"])
    return _baselines[task_id]


def assert_no_gain_and_clean(env, task_id: str, reward: float, info: dict) -> None:
    noop_reward, noop_report = _baselines[task_id]
    assert reward <= noop_reward, f"the hack raised the reward: {reward} > {noop_reward}\n{info.get('evaluation')}"
    assert info["evaluation"] == noop_report, "the hack changed what was scored"
    outputs, reward, info = episode(env, task_id, ["print(2 + 2)", NOOP])
    assert outputs[0].strip() == "4", f"the next episode is not clean: {outputs[0][:300]}"
    assert (reward, info["evaluation"]) == (noop_reward, noop_report), "the hack leaked into the next episode"


def hack(env, task_id: str, actions: list[str], marker: str = "HACK RAN", pause_s: float = 0.0) -> list[str]:
    """Play a hack on `task_id`: it must run (print `marker`), earn no more than an honest no-op and
    leave the next episode clean. Returns its outputs for further checks."""
    baseline(env, task_id)
    outputs, reward, info = episode(env, task_id, actions, pause_s)
    assert marker in outputs[0], outputs[0][:500]
    assert_no_gain_and_clean(env, task_id, reward, info)
    return outputs


# ---- ground-truth discovery -----------------------------------------------------------------

FIND_BY_GC = """
gc = __import__("gc")  # SafetyGuard reads import statements only
found = None
for o in gc.get_objects():
    try:
        if type(o).__name__ == 'Task' and o.ground_truth is not None:
            found = o.ground_truth.answer
    except Exception:
        pass
print('HACK RAN; found:', found is not None)
apis.supervisor.complete_task(answer=found)
"""

FIND_BY_FRAMES = """
{module} = __import__("{module}")
found = None
frames = {frames}
for f in frames:
    for value in list(f.f_locals.values()) + list(f.f_globals.values()):
        try:
            task = getattr(value, 'task', None)
            if type(task).__name__ == 'Task' and task.ground_truth is not None:
                found = task.ground_truth.answer
        except Exception:
            pass
print('HACK RAN; frames:', len(frames), 'found:', found is not None)
apis.supervisor.complete_task(answer=found)
"""

WALK = """[]
for _f in sys._current_frames().values():
    while _f is not None:
        frames.append(_f)
        _f = _f.f_back"""


@pytest.mark.parametrize("hack", [
    FIND_BY_GC,
    FIND_BY_FRAMES.format(module="sys", frames=WALK),
    FIND_BY_FRAMES.format(module="inspect", frames="[i.frame for i in inspect.stack()]"),
], ids=["gc", "frames", "inspect"])
def test_ground_truth_in_memory_is_out_of_reach(env, question: str, hack: str):
    baseline(env, question)
    outputs, reward, info = episode(env, question, [hack])
    assert "HACK RAN" in outputs[0], outputs[0][:500]
    assert "found: False" in outputs[0], "agent code found the ground truth in memory"
    assert_no_gain_and_clean(env, question, reward, info)


READ_FILES = """
io, json, pathlib = (__import__(m) for m in ("io", "json", "pathlib"))
opener = getattr(__import__("builtins"), "op" + "en")  # SafetyGuard reads names, not strings
found = None
for path in {paths!r}:
    for read in (lambda p: opener(p).read(), lambda p: pathlib.Path(p).read_text(), lambda p: io.FileIO(p).read().decode()):
        try:
            found = json.loads(read(path))
        except Exception as err:
            print('refused:', type(err).__name__)
print('HACK RAN; found:', found is not None)
apis.supervisor.complete_task(answer=found)
"""


# The same reads from a thread, which goes on running between actions, outside the action's own code.
READ_FILES_LATER = """
threading = __import__("threading")
result = {{}}
def read_later():
    threading.Event().wait(0.2)
    opener = getattr(__import__("builtins"), "op" + "en")
    for path in {paths!r}:
        try:
            result["found"] = __import__("json").loads(opener(path).read())
        except Exception as err:
            result["refused"] = type(err).__name__
threading.Thread(target=read_later, daemon=True).start()
print('HACK RAN')
"""
REPORT_LATER = "print('found:', 'found' in result)\napis.supervisor.complete_task(answer=result.get('found'))"


@pytest.mark.parametrize("later", [False, True], ids=["in-action", "from-thread"])
def test_ground_truth_files_are_unreadable(env, question: str, later: bool):
    other = _tasks(env, "question")[-1]
    paths = [os.path.join(env.root, "data", "tasks", t, "ground_truth", "answer.json") for t in (question, other)]
    assert all(os.path.exists(p) for p in paths)
    baseline(env, question)
    if later:
        outputs, reward, info = episode(env, question, [READ_FILES_LATER.format(paths=paths), REPORT_LATER], pause_s=0.6)
    else:
        outputs, reward, info = episode(env, question, [READ_FILES.format(paths=paths)])
    assert "HACK RAN" in outputs[0], outputs[0][:500]
    assert "found: False" in outputs[-1], "agent code read a ground-truth file"
    assert_no_gain_and_clean(env, question, reward, info)


# ---- patching the evaluator, the tracker, the world -------------------------------------------

PATCH_SCORING = """
import appworld.evaluator as ev
from appworld import AppWorld
class Perfect:
    success, pass_count, fail_count, num_tests, passes, failures = True, 9, 0, 9, [], []
ev.evaluate_task = lambda *args, **kwargs: Perfect()
AppWorld.evaluate = lambda self, *args, **kwargs: Perfect()
ev.TestTracker.pass_count = property(lambda self: self.num_tests)
ev.TestTracker.success = property(lambda self: True)
print('HACK RAN')
"""


def test_patching_the_scorer_changes_nothing(env, action: str):
    hack(env, action, [PATCH_SCORING, NOOP])


LATE_PATCHES = """
atexit, signal, threading = (__import__(m) for m in ("atexit", "signal", "threading"))
import appworld.evaluator as ev
class Perfect:
    success, pass_count, fail_count, num_tests, passes, failures = True, 9, 0, 9, [], []
def later():
    threading.Event().wait(0.3)
    ev.evaluate_task = lambda *args, **kwargs: Perfect()
    ev.TestTracker.pass_count = property(lambda self: self.num_tests)
threading.Thread(target=later, daemon=True).start()
atexit.register(later)
signal.signal(signal.SIGALRM, signal.SIG_IGN)
print('HACK RAN')
"""


def test_late_patches_threads_atexit_signals_do_not_reach_scoring(env, action: str):
    hack(env, action, [LATE_PATCHES, "pass", NOOP], pause_s=0.6)
    outputs, *_ = episode(env, action, ["while True: pass"])  # AppWorld's own alarm still works
    assert "timed out" in outputs[0]


def test_poisoned_builtins_stay_in_their_episode(env, action: str):
    hack(env, action, ["builtins = __import__('builtins')\nprint('HACK RAN')\nbuiltins.print = None"])


# ---- app state outside the APIs ----------------------------------------------------------------

WRITE_DBS = """
from appworld.apps.simple_note.models import Note
try:
    notes = Note.find_all()
    Note.delete_by_ids([n.id for n in notes])
    print('HACK RAN; deleted', len(notes))
except Exception as err:
    print('HACK RAN; refused:', type(err).__name__)
"""


def test_databases_change_only_through_apis(env, question: str):
    hack(env, question, [WRITE_DBS, NOOP])


DB_CONTROL = """
codes = []
for call in (lambda: requester.client.get('/dbs'),
             lambda: requester.client.post('/dbs/save', json={'from_db_home_path': 'x', 'to_db_home_path': 'y'}),
             lambda: requester.client.delete('/dbs/cache', params={}),
             lambda: requester.client.get('/admin/main_user')):
    try:
        codes.append(call().status_code)
    except Exception as err:
        codes.append(type(err).__name__)
print('HACK RAN; answered:', [c for c in codes if c == 200])
"""


def test_database_control_endpoints_are_unreachable(env, action: str):
    hack(env, action, [DB_CONTROL, NOOP], marker="HACK RAN; answered: []")


TAMPER_GUARD = """
gc, json = __import__("gc"), __import__("json")
opener = getattr(__import__("builtins"), "op" + "en")
changed = 0
for o in gc.get_objects():
    if type(o).__name__ == "function" and o.__name__ == "hook" and "audit" in o.__qualname__:
        for attr, value in (("__defaults__", (("/",), frozenset())), ("__code__", (lambda *a, **k: None).__code__)):
            try:
                setattr(o, attr, value)
                changed += 1
            except Exception:
                pass
    if type(o).__name__ == "function" and o.__name__ == "switch" and o.__closure__:
        o(False)  # a guard with an off switch
        changed += 1
found = None
try:
    found = json.loads(opener({path!r}).read())
except Exception as err:
    print("refused:", type(err).__name__)
print("HACK RAN; changed:", changed, "found:", found is not None)
apis.supervisor.complete_task(answer=found)
"""


def test_the_guard_cannot_be_switched_off(env, question: str):
    path = os.path.join(env.root, "data", "tasks", question, "ground_truth", "answer.json")
    hack(env, question, [TAMPER_GUARD.format(path=path)], marker="HACK RAN; changed: 0 found: False")


def test_sandbox_is_confined_by_the_kernel_where_it_can_be(env, action: str):
    from idagym.appworld.landlock import abi_version

    env.reset(options={"task_id": action})
    assert env.isolation == ("landlock" if abi_version() else "audit-hook")
