"""AppWorld task data for idagym: the real data when present, else a built-in offline suite.

The suite is generated deterministically from a seed, written in AppWorld's own on-disk format
and verified with the unchanged ``appworld.AppWorld`` engine (see ``idagym.appworld.tasks.build``).

In a process that will create ``AppWorld`` worlds, call ``use_root(suite_root())`` first.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

# 2: the challenge split (train/dev/test and base_dbs are byte for byte those of version 1).
SUITE_VERSION = 2
SPLITS = ("train", "dev", "test", "challenge")

__all__ = [
    "SPLITS",
    "build_suite",
    "duplicated_task_ids",
    "ensure_appworld_installed",
    "format_stats",
    "ground_truth_code",
    "load_split",
    "scenario_id",
    "suite_root",
    "suite_stats",
    "use_root",
]


def ensure_appworld_installed() -> None:
    """Run appworld's offline install (unpacks the apps' source) unless it was already done."""
    import appworld

    package = Path(appworld.__file__).parent
    if (package / "apps" / "spotify" / "apis.py").exists():
        return
    from appworld.install import install_package

    with _lock(Path(tempfile.gettempdir()) / "idagym-appworld-install.lock"):
        if not (package / "apps" / "spotify" / "apis.py").exists():
            with contextlib.redirect_stdout(None):
                install_package()


def _cache_dir() -> Path:
    return Path(os.environ.get("IDAGYM_CACHE") or Path.home() / ".cache" / "idagym")


def _suite_dir(seed: int = 0) -> Path:
    return _cache_dir() / f"appworld-suite-v{SUITE_VERSION}-seed{seed}"


def _is_complete(root: Path) -> bool:
    # A build of another version (say one without the challenge split) is rebuilt, not reused.
    manifest = root / "data" / "suite.json"
    return manifest.exists() and json.loads(manifest.read_text()).get("version") == SUITE_VERSION


def _real_root() -> Path | None:
    env = os.environ.get("APPWORLD_ROOT")
    if env and (Path(env) / "data" / "tasks").is_dir():
        return Path(env)
    return None


def suite_root(build: bool = True) -> Path:
    """The folder to use as APPWORLD_ROOT (it holds ``data/``).

    Real AppWorld data when ``$APPWORLD_ROOT/data/tasks`` exists, else the built-in suite in
    ``$IDAGYM_CACHE`` (default ``~/.cache/idagym``), built on first use when ``build``.
    """
    real = _real_root()
    if real is not None:
        return real
    root = _suite_dir()
    if _is_complete(root):
        return root
    if not build:
        raise FileNotFoundError(f"no AppWorld data: $APPWORLD_ROOT has no data/tasks and the "
                                f"built-in suite is not built at {root} (run `idagym tasks build`)")
    return build_suite()


def use_root(root: Path) -> None:
    """Point the appworld package at ``root`` for this process (and its children).

    appworld reads ``$APPWORLD_ROOT`` on every path lookup; its ``path_store`` is updated too.
    Call before the first ``AppWorld(...)`` of the process: appworld caches the API docs it
    loaded, so switching roots later in one process is not supported.
    """
    ensure_appworld_installed()
    os.environ["APPWORLD_ROOT"] = str(root)
    from appworld.common.path_store import path_store

    path_store.update_root(str(root))


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_suite(root: Path | None = None, seed: int = 0, verify: bool = True, workers: int = 2,
                *, force: bool = False, templates: list[str] | None = None,
                max_scenarios: int | None = None, progress: bool = True) -> Path:
    """Build (and verify) the built-in suite at ``root`` (default: the cache), atomically.

    Builds into a temporary folder next to ``root`` and renames it into place, under a file lock,
    so concurrent callers wait and then reuse one build. Returns ``root``. ``templates`` and
    ``max_scenarios`` build a smaller suite (tests, determinism checks).
    """
    from idagym.appworld.tasks import build as _build

    ensure_appworld_installed()
    root = Path(root) if root is not None else _suite_dir(seed)
    root.parent.mkdir(parents=True, exist_ok=True)
    with _lock(root.parent / f".{root.name}.lock"):
        if _is_complete(root) and not force:
            return root
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
        try:
            _build.build_into(tmp, seed=seed, verify_tasks=verify, workers=workers,
                              templates=templates,
                              max_scenarios=max_scenarios or _build.MAX_SCENARIOS_PER_TEMPLATE,
                              progress=progress)
            if root.exists():
                old = root.with_name(f".{root.name}.old-{os.getpid()}")
                root.rename(old)
                shutil.rmtree(old, ignore_errors=True)
            tmp.rename(root)
            (root.parent / f"{root.name}.verify_failures.json").unlink(missing_ok=True)
        except BaseException:
            failures = tmp / "verify_failures.json"
            if failures.exists():  # keep the evidence next to the cache
                shutil.copy(failures, root.parent / f"{root.name}.verify_failures.json")
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return root


def _root(root: Path | None) -> Path:
    return Path(root) if root is not None else suite_root()


def load_split(split: str, root: Path | None = None) -> list[str]:
    """Task ids of ``split`` (one of the files under ``data/datasets``)."""
    folder = _root(root) / "data" / "datasets"
    valid = sorted(p.stem for p in folder.glob("*.txt"))
    if split not in valid:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(valid)}")
    return [line.strip() for line in (folder / f"{split}.txt").read_text().splitlines()
            if line.strip()]


def ground_truth_code(task_id: str, root: Path | None = None) -> str:
    """The task's ground-truth solution: code for ``world.execute`` ending in complete_task."""
    gt = _root(root) / "data" / "tasks" / task_id / "ground_truth"
    path = gt / "solution_code.py"
    if not path.exists():
        raise FileNotFoundError(f"no ground-truth solution code for task {task_id} at {path}")
    return path.read_text()


def scenario_id(task_id: str) -> str:
    """``'1a2b3c4_2'`` -> ``'1a2b3c4'`` (AppWorld's scenario / generator id)."""
    task_id = task_id.split(":")[0]
    if task_id.count("_") != 1:
        raise ValueError(f"not an AppWorld task id: {task_id!r}")
    return task_id.split("_")[0]


def _task_infos(root: Path) -> dict[str, dict]:
    manifest = root / "data" / "suite.json"
    if manifest.exists():
        return json.loads(manifest.read_text())["tasks"]
    # Real AppWorld data: derive what we can from the ground truth files.
    infos: dict[str, dict] = {}
    for split in sorted(p.stem for p in (root / "data" / "datasets").glob("*.txt")):
        for task_id in load_split(split, root):
            gt = root / "data" / "tasks" / task_id / "ground_truth"
            meta = json.loads((gt / "metadata.json").read_text()) if gt.exists() else {}
            answer = (json.loads((gt / "answer.json").read_text())
                      if (gt / "answer.json").exists() else None)
            infos.setdefault(task_id, {
                "split": split, "difficulty": meta.get("difficulty"),
                "apps": meta.get("apps", []), "kind": "question" if answer is not None else
                "action", "template": None})
    return infos


@functools.cache
def task_templates(root: str | Path) -> dict[str, str]:
    """Every task's template: the suite's template name, or for real AppWorld data its scenario
    (AppWorld's tasks of one scenario are variations of one task)."""
    return {t: i.get("template") or scenario_id(t) for t, i in _task_infos(Path(root)).items()}


@functools.cache
def task_difficulties(root: str | Path) -> dict[str, int | None]:
    """Every task's difficulty level (1-3), read once per task root."""
    return {t: i.get("difficulty") for t, i in _task_infos(Path(root)).items()}


def duplicated_task_ids(split: str, root: Path | None = None) -> set[str]:
    """Tasks of ``split`` whose template and parameters are those of a task in another split.

    Splits are drawn by scenario, and a few parameter sets were drawn in two scenarios of one
    template; the split files stay as they are (figures stay comparable), and training leaves these
    tasks out so that no held-out task is trained on.
    """
    infos = _task_infos(_root(root))
    key = lambda i: (i.get("template"), json.dumps(i.get("params"), sort_keys=True))  # noqa: E731
    elsewhere = {key(i) for i in infos.values() if i["split"] != split and i.get("template")}
    return {t for t, i in infos.items() if i["split"] == split and i.get("template") and key(i) in elsewhere}


def suite_stats(root: Path | None = None) -> dict:
    """Counts of tasks per split, app, difficulty and kind (plus scenarios and templates)."""
    root = _root(root)
    infos = _task_infos(root)
    templates = {i["template"] for i in infos.values() if i.get("template")}
    multi = {i["template"] for i in infos.values() if i.get("template") and len(i["apps"]) > 1}
    splits = Counter(i["split"] for i in infos.values())
    order = [s for s in SPLITS if s in splits] + sorted(set(splits) - set(SPLITS))
    return {
        "root": str(root),
        "num_tasks": len(infos),
        "num_scenarios": len({scenario_id(t) for t in infos}),
        "num_templates": len(templates),
        "num_multi_app_templates": len(multi),
        "splits": {s: splits[s] for s in order},
        "split_templates": {s: len({i["template"] for i in infos.values()
                                    if i["split"] == s and i.get("template")}) for s in order},
        "apps": dict(sorted(Counter(a for i in infos.values() for a in i["apps"]).items())),
        "difficulty": dict(sorted(Counter(i["difficulty"] for i in infos.values()).items())),
        "kind": dict(Counter(i["kind"] for i in infos.values())),
    }


def format_stats(stats: dict) -> str:
    """A small human-readable table of ``suite_stats`` for ``idagym tasks stats``."""
    lines = [f"root: {stats['root']}",
             f"tasks: {stats['num_tasks']}  scenarios: {stats['num_scenarios']}  "
             f"templates: {stats['num_templates']} ({stats['num_multi_app_templates']} multi-app)"]
    for key in ("splits", "apps", "difficulty", "kind"):
        lines.append(f"{key}:")
        width = max((len(str(k)) for k in stats[key]), default=0)
        for k, v in stats[key].items():
            n = stats.get("split_templates", {}).get(k) if key == "splits" else None
            lines.append(f"  {str(k):<{width}}  {v:>5}" + (f"  ({n} templates)" if n else ""))
    return "\n".join(lines)
