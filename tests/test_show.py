"""`idagym show`: the self-contained HTML viewer (also checked in headless Chromium) and --text."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from rich.console import Console

from idagym.buffer import Trajectory, Turn
from idagym.cli import main
from idagym.show import page_data, print_trajectory, write_html


def make_run(root: Path, n: int = 6, *, iterations: int = 2, group_size: int = 3) -> Path:
    """A hand-written run folder: n trajectories over `iterations`, in groups of `group_size`."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "metrics.jsonl", "w") as f:
        for it in range(iterations):
            f.write(json.dumps({"iteration": it, "algorithm": "loop", "reward_mean": 0.2 + 0.3 * it, "success_rate": 0.5 * it}) + "\n")
    with open(root / "eval.jsonl", "w") as f:
        f.write(json.dumps({"iteration": 0, "phase": "before", "success_rate": 0.1, "success_ci95": [0.0, 0.3], "tgc": 0.1}) + "\n")
    with open(root / "trajectories.jsonl", "w") as f:
        for i in range(n):
            it, g = i % iterations, i // group_size
            action = f"print('task {g}')\napis.call('step', {i % group_size})\ncomplete_task()"
            traj = Trajectory(task_id=f"task_{g}", group_id=g, turns=[Turn(observation=f"do task {g}", response=action, action=action)],
                              reward=float(i % group_size == 0), success=i % group_size == 0, terminated=True,
                              info={"iteration": it, "turn": 1, "pass_count": i % 3, "num_tests": 2, "template": f"tpl_{g % 2}"})
            traj.extend([1, 2, 3], generated=False)
            traj.extend([72, 105, 33], generated=True, logprobs=[-0.1, -2.0, -7.0])
            f.write(json.dumps(traj.to_json()) + "\n")
    (root / "config.yaml").write_text("algorithm: loop\n")
    return root


def test_page_is_self_contained_and_embeds_every_trajectory(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    assert main(["show", str(run)]) == 0
    out = Path(capsys.readouterr().out.strip())
    assert out == run / "show.html"
    page = out.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page) and "http://" not in page and "https://" not in page
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S).group(1))
    assert len(data["trajs"]) == 6 and [m["it"] for m in data["metrics"]] == [0, 1] and data["evals"][0]["s"] == 0.1
    first = data["trajs"][0]
    assert first["pc"] == 0 and first["nt"] == 2 and first["tk"] == [[3, -3.0333]]  # no tokenizer: counts only
    assert "apis.call('step', 0)" in first["turns"][0]["a"]


def test_group_advantages(tmp_path):
    data = page_data(make_run(tmp_path / "run", n=6, iterations=1, group_size=3))
    assert [t["r"] for t in data["trajs"]] == [1, 0, 0, 1, 0, 0]
    assert [t["loo"] for t in data["trajs"]][:3] == [1.0, -0.5, -0.5]  # r minus the mean of the other two
    std = (1 / 3) ** 0.5  # of [1, 0, 0], with Bessel's correction
    assert [t["grpo"] for t in data["trajs"]][:3] == pytest.approx([(2 / 3) / std, (-1 / 3) / std, (-1 / 3) / std], abs=1e-3)
    # the same group_id in another iteration is another group
    two = page_data(make_run(tmp_path / "two", n=3, iterations=3, group_size=3))
    assert [t["loo"] for t in two["trajs"]] == [0, 0, 0]


def test_tokens_decoded_with_the_run_tokenizer(tmp_path):
    from idagym.agents.tokenizers import byte_tokenizer

    run = make_run(tmp_path / "run", n=2)
    byte_tokenizer().save_pretrained(str(run / "model"))
    tok = page_data(run)["trajs"][0]["tok"]
    assert [p[1] for p in tok[0]] == [-0.1, -2.0, -7.0] and all(isinstance(p[0], str) for p in tok[0])


def test_text_prints_the_trajectory(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    console = Console(file=io.StringIO(), width=120)
    print_trajectory(run, 1, console=console)
    text = console.file.getvalue()
    assert "task task_0" in text and "apis.call('step', 1)" in text and "tests 1/2" in text and "3 tokens" in text
    assert main(["show", str(run), "--text", "--traj", "2"]) == 0
    assert "apis.call('step', 2)" in capsys.readouterr().out


@pytest.mark.parametrize("args", [[], ["--text"]])
def test_not_a_run_is_a_one_line_error(tmp_path, capsys, args):
    (tmp_path / "x.txt").write_text("hi")
    assert main(["show", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("idagym show: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert main(["show", str(tmp_path / "missing")]) == 2
    capsys.readouterr()


def test_traj_out_of_range_is_an_error(tmp_path, capsys):
    assert main(["show", str(make_run(tmp_path / "run")), "--text", "--traj", "99"]) == 2
    assert "out of range" in capsys.readouterr().err


def test_run_still_being_written(tmp_path):
    run = make_run(tmp_path / "run", n=4)
    with open(run / "trajectories.jsonl", "a") as f:
        f.write('{"task_id": "torn", "rew')  # killed mid-line
    (run / "eval.jsonl").unlink()
    assert len(page_data(run)["trajs"]) == 4
    only = tmp_path / "only-metrics"
    only.mkdir()
    shutil.copy(run / "metrics.jsonl", only)
    assert "metrics" in write_html(only, tmp_path / "o.html").read_text()


# ---- in a real browser ----------------------------------------------------------------------------
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        install = ["apt-get", "install", "-y", "chromium"]
        if subprocess.run(install, capture_output=True, timeout=900).returncode != 0:  # no package lists yet
            subprocess.run(["apt-get", "update"], capture_output=True, timeout=900)
            subprocess.run(install, capture_output=True, timeout=900)
        path = shutil.which("chromium")
    if path is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium, as root)")
    return path


def browse(page: Path, tmp_path: Path, fragment: str = "", *extra: str) -> str:
    """The DOM after the page ran, scripts cut (or chromium's output with --screenshot)."""
    cmd = [chromium(), "--headless=new", "--disable-gpu", "--no-sandbox", "--no-first-run",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", *extra]
    cmd += [] if extra else ["--dump-dom"]
    done = subprocess.run([*cmd, page.resolve().as_uri() + fragment], capture_output=True, text=True, timeout=120)
    return re.sub(r"<script\b.*?</script>", "", done.stdout, flags=re.S)


def element(dom: str, id_: str) -> str:
    m = re.search(rf'id="{id_}"[^>]*>(.*?)</', dom, re.S)
    assert m, f"no #{id_} in the DOM"
    return m.group(1)


def test_browser_shows_trajectories_filters_and_details(tmp_path):
    page = write_html(make_run(tmp_path / "run", n=12, iterations=2, group_size=3))
    dom = browse(page, tmp_path)
    assert element(dom, "errors") == ""
    assert element(dom, "count") == "12 trajectories" and dom.count("<tr data-i=") == 12
    assert dom.count("<svg") == 2 and "<path" in dom
    assert element(dom, "count").startswith("12")
    narrowed = browse(page, tmp_path, "#task=task_1")
    assert element(narrowed, "count") == "3 trajectories (of 12)" and element(narrowed, "errors") == ""
    assert element(browse(page, tmp_path, "#iteration=1&success=0"), "count").startswith("4 trajectories")
    assert element(browse(page, tmp_path, "#template=tpl_1"), "count") == "6 trajectories (of 12)"  # groups 1 and 3
    # details with the diff against another rollout of its group: trajectories 0 and 2 are (it 0, group 0)
    detail = browse(page, tmp_path, "#traj=0&compare=2")
    assert element(detail, "errors") == "" and "Trajectory 0: task task_0" in detail and "tests passed 0/2" in detail
    assert re.search(r'class="del">apis.call\(\'step\', 0\)', detail) and re.search(r'class="ins">apis.call\(\'step\', 2\)', detail)
    shot = tmp_path / "page.png"
    browse(page, tmp_path, "#traj=0&compare=2", f"--screenshot={shot}", "--window-size=1200,900")
    assert shot.exists() and shot.stat().st_size > 10_000


def test_browser_shows_behaviour_figures(tmp_path):
    run = make_run(tmp_path / "run", n=3, iterations=2)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    with open(run / "metrics.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps({**r, "behaviour/read_docs_first": 0.25 * (1 + r["iteration"]),
                                "behaviour/failed_api_calls_per_episode": 1.5}) + "\n")
    with open(run / "eval.jsonl", "a") as f:
        f.write(json.dumps({"iteration": 2, "phase": "after", "success_rate": 0.2,
                            "behaviour": {"read_docs_first": 0.75, "completed_early": None}}) + "\n")
    data = page_data(run)
    assert [m["b"]["read_docs_first"] for m in data["metrics"]] == [0.25, 0.5]
    assert data["evals"][-1]["b"] == {"read_docs_first": 0.75, "completed_early": None}
    dom = browse(write_html(run), tmp_path)
    assert element(dom, "errors") == "" and dom.count("<svg") == 4
    assert "behaviour: share of episodes" in dom and "failed_api_calls_per_episode" in dom
    assert re.search(r'<td>after @ 2</td><td class="num">0.750</td><td class="num"></td>', dom)


def test_browser_loads_10000_trajectories_fast(tmp_path):
    page = write_html(make_run(tmp_path / "run", n=10_000, iterations=20, group_size=8))
    start = time.monotonic()
    dom = browse(page, tmp_path)
    wall = time.monotonic() - start
    assert element(dom, "errors") == ""
    assert element(dom, "count") == "10000 trajectories" and dom.count("<tr data-i=") == 200  # the rest on "show more"
    render_ms = float(element(dom, "render-ms"))
    print(f"10k trajectories: first render at {render_ms:.0f} ms in the page, chromium ran {wall:.1f} s, page {page.stat().st_size >> 10} KiB")
    assert render_ms < 3000
