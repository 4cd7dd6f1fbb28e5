"""`idagym show RUN`: look at a run folder.

The default writes RUN/show.html, one self-contained page (no network: CSS, JS and the data are
inline) with the learning curves, the behaviour figures per iteration and per evaluation
(`idagym.behaviour`), the trajectories (filters, details, generated tokens shaded by
log-prob, group advantages) and a line diff between two rollouts of the same group. `--text`
prints one trajectory in the terminal instead.

The page reads filters from the URL (`show.html#task=abc&template=t&iteration=1&reward=0.5&success=1`,
`traj=N` opens trajectory N, `compare=M` diffs it with M), so a link can point at a view.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from pathlib import Path
from typing import Any

from idagym.buffer import Trajectory
from idagym.run import read_jsonl


class ShowError(Exception):
    """Bad input: printed as one line, exit code 2."""


def _check_run(run_dir: str | Path) -> Path:
    root = Path(run_dir)
    if not root.is_dir():
        raise ShowError(f"{root} is not a folder")
    if not (root / "metrics.jsonl").exists() and not (root / "trajectories.jsonl").exists():
        raise ShowError(f"{root} is not a run folder (no metrics.jsonl and no trajectories.jsonl)")
    return root


def load_trajectories(root: Path) -> list[Trajectory]:
    """Trajectories of a run; a torn or foreign line is skipped (the run may still be writing)."""
    out = []
    for row in read_jsonl(root / "trajectories.jsonl"):
        try:
            out.append(Trajectory.from_json(row))
        except (TypeError, AttributeError):
            continue
    return out


def _load_tokenizer(root: Path) -> Any:
    """The run's saved tokenizer, or None (no model/ yet, or one without a tokenizer)."""
    if not (root / "model").is_dir():
        return None
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(root / "model"), local_files_only=True)
    except Exception:
        return None


def advantages(trajs: list[Trajectory]) -> tuple[list[float], list[float]]:
    """Leave-one-out and GRPO advantages, grouping rollouts by (iteration, group_id)."""
    if not trajs:
        return [], []
    import torch

    from idagym.algorithms.functional import group_normalized_advantage, loo_advantage

    keys: dict[tuple, int] = {}
    groups = [keys.setdefault((t.info.get("iteration"), t.group_id), len(keys)) for t in trajs]
    rewards = torch.tensor([float(t.reward) for t in trajs], dtype=torch.float64)
    ids = torch.tensor(groups)
    return loo_advantage(rewards, ids).tolist(), group_normalized_advantage(rewards, ids).tolist()


def _token_turns(t: Trajectory) -> list[list[tuple[int, float]]]:
    """Generated (token id, log-prob) pairs per turn (loss_mask == 1 only)."""
    turns: list[list[tuple[int, float]]] = [[] for _ in range(max(len(t.turns), 1))]
    for k, (tid, m) in enumerate(zip(t.input_ids, t.loss_mask, strict=False)):
        if not m:
            continue
        turn = t.turn_index[k] if k < len(t.turn_index) else 0
        turn = min(max(turn, 0), len(turns) - 1)
        turns[turn].append((tid, t.logprobs[k] if k < len(t.logprobs) else 0.0))
    return turns


def _mean(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 4) if xs else None


def _number(x: Any) -> float | None:
    return x if isinstance(x, int | float) and not isinstance(x, bool) else None


def page_data(root: Path) -> dict[str, Any]:
    """What the page embeds: run name, curves, and one compact record per trajectory."""
    trajs = load_trajectories(root)
    loo, grpo = advantages(trajs)
    tok = _load_tokenizer(root)
    pieces: dict[int, str] = {}  # decode each token id once

    def piece(tid: int) -> str:
        if tid not in pieces:
            pieces[tid] = tok.decode([tid])
        return pieces[tid]

    records = []
    for i, t in enumerate(trajs):
        per_turn = _token_turns(t)
        lps = [lp for turn in per_turn for _, lp in turn]
        rec: dict[str, Any] = {
            "i": i, "it": t.info.get("iteration"), "task": t.task_id, "tpl": t.info.get("template"), "g": t.group_id,
            "r": t.reward, "s": bool(t.success), "term": t.terminated, "trunc": t.truncated, "err": t.error,
            "pc": t.info.get("pass_count"), "nt": t.info.get("num_tests"), "out": t.info.get("last_output"),
            "loo": round(loo[i], 4), "grpo": round(grpo[i], 4), "n": len(lps), "lp": _mean(lps),
            "turns": [{"o": u.observation, "re": u.response, "a": u.action} for u in t.turns],
        }
        if tok is not None:  # token strings only for generated tokens: the prompt is in the turns
            rec["tok"] = [[[piece(tid), round(lp, 3)] for tid, lp in turn] for turn in per_turn]
        else:
            rec["tk"] = [[len(turn), _mean([lp for _, lp in turn])] for turn in per_turn]
        records.append(rec)
    keys = ("reward_mean", "success_rate")
    metrics = [
        {"it": m.get("iteration"), **{k: _number(m.get(k)) for k in keys}, "alg": m.get("algorithm"),
         "b": {k.split("/", 1)[1]: _number(v) for k, v in m.items() if k.startswith("behaviour/")}}
        for m in read_jsonl(root / "metrics.jsonl")
    ]
    evals = [
        {"it": e.get("iteration"), "phase": e.get("phase"), "s": _number(e.get("success_rate")),
         "ci": e.get("success_ci95"), "tgc": _number(e.get("tgc")), "sgc": _number(e.get("sgc")),
         "b": {k: _number(v) for k, v in (e.get("behaviour") or {}).items()}}
        for e in read_jsonl(root / "eval.jsonl")
    ]
    return {"run": str(root.resolve()), "metrics": metrics, "evals": evals, "trajs": records, "tokens": tok is not None}


def write_html(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the page for `run_dir` (default RUN/show.html) and return its path."""
    root = _check_run(run_dir)
    data = json.dumps(page_data(root), ensure_ascii=False, separators=(",", ":"))
    data = data.replace("<", "\\u003c")  # no "</script>" can end the data tag early
    page = PAGE.replace("__TITLE__", html.escape(root.resolve().name)).replace("__DATA__", data)
    path = Path(out) if out else root / "show.html"
    path.write_text(page, encoding="utf-8")
    return path


def print_trajectory(run_dir: str | Path, index: int = 0, console: Any = None) -> None:
    """Print trajectory `index` of the run with rich: header, then each turn's text and action."""
    from rich.console import Console
    from rich.panel import Panel
    from rich.syntax import Syntax

    root = _check_run(run_dir)
    trajs = load_trajectories(root)
    if not -len(trajs) <= index < len(trajs):
        raise ShowError(f"trajectory {index} out of range: {root} holds {len(trajs)}")
    t = trajs[index]
    console = console or Console()
    loo, grpo = advantages(trajs)
    tests = f"  tests {t.info['pass_count']}/{t.info['num_tests']}" if "num_tests" in t.info else ""
    console.rule(f"trajectory {index % len(trajs)} of {len(trajs)}: task {t.task_id}")
    console.print(
        f"iteration {t.info.get('iteration')}  group {t.group_id}  reward {t.reward:.3f}  "
        f"success {t.success}{tests}  advantage LOO {loo[index]:+.3f} GRPO {grpo[index]:+.3f}  "
        f"{'terminated' if t.terminated else 'truncated' if t.truncated else 'running'}"
    )
    if t.error:
        console.print(f"[red]error:[/red] {t.error}", markup=True, highlight=False)
    for k, (turn, toks) in enumerate(zip(t.turns, _token_turns(t), strict=False)):
        lps = [lp for _, lp in toks]
        mean = f", mean log-prob {_mean(lps):.3f}" if lps else ""
        console.print(Panel(turn.observation, title=f"turn {k} observation", title_align="left"))
        if turn.response and turn.response != turn.action:
            console.print(Panel(turn.response, title="response", title_align="left"))
        console.print(
            Panel(Syntax(turn.action, "python", word_wrap=True), title=f"action ({len(toks)} tokens{mean})", title_align="left")
        )
    if t.info.get("last_output"):
        console.print(Panel(str(t.info["last_output"]), title="last output", title_align="left"))


def cmd_show(args: argparse.Namespace) -> int:
    try:
        if args.text:
            print_trajectory(args.run, args.traj)
        else:
            print(write_html(args.run, args.out))
    except (ShowError, OSError) as e:
        print(f"idagym show: error: {e}", file=sys.stderr)
        return 2
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("show", help="look at a run: an HTML trajectory viewer, or one trajectory in the terminal")
    p.add_argument("run", help="run folder (written by idagym train)")
    p.add_argument("--out", help="HTML file to write (default RUN/show.html)")
    p.add_argument("--text", action="store_true", help="print one trajectory in the terminal instead")
    p.add_argument("--traj", type=int, default=0, help="with --text: which trajectory (default 0)")
    p.set_defaults(func=cmd_show)


PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>idagym show: __TITLE__</title>
<script>
// first, so that an error anywhere on the page is shown (and seen by tests) instead of lost
window.onerror = function (msg, src, line, col) {
  var el = document.getElementById("errors");
  if (el) { el.textContent += msg + " (line " + line + ":" + col + ")\n"; el.style.display = "block"; }
};
window.addEventListener("unhandledrejection", function (e) { window.onerror(String(e.reason), "", 0, 0); });
</script>
<style>
body { font: 14px system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 18px; margin: 0 0 8px; } h2 { font-size: 15px; margin: 16px 0 6px; }
#errors { display: none; color: #b00; white-space: pre-wrap; border: 1px solid #b00; padding: 4px; }
#curves { display: flex; gap: 16px; flex-wrap: wrap; }
#filters { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; margin: 8px 0; }
#filters input { width: 9em; }
table { border-collapse: collapse; } td, th { padding: 2px 8px; text-align: left; border-bottom: 1px solid #eee; }
#rows tr { cursor: pointer; } #rows tr:hover { background: #f3f6ff; } #rows tr.open { background: #dde6ff; }
.ok { color: #080; } .bad { color: #b00; } .num { text-align: right; font-variant-numeric: tabular-nums; }
#count { font-weight: bold; }
#detail { margin-top: 12px; }
pre { white-space: pre-wrap; word-break: break-word; background: #f7f7f7; padding: 6px; margin: 4px 0; max-height: 24em; overflow: auto; }
.turn { border-left: 3px solid #99b; padding-left: 8px; margin: 10px 0; }
.label { color: #666; font-size: 12px; }
.tok { border-radius: 2px; }
.diff { width: 100%; table-layout: fixed; font: 12px monospace; } .diff td { white-space: pre-wrap; vertical-align: top; border: 0; }
.del { background: #fdd; } .ins { background: #dfd; }
button { font-size: 12px; }
</style></head>
<body>
<h1>idagym show: <span id="run"></span></h1>
<div id="errors"></div>
<div id="curves"></div>
<h2>Trajectories</h2>
<div id="filters">
  <label>iteration <select id="f-it"><option value="">all</option></select></label>
  <label>task <input id="f-task" placeholder="task id contains"></label>
  <label>template <select id="f-tpl"><option value="">all</option></select></label>
  <label>reward &ge; <input id="f-reward" type="number" step="any"></label>
  <label>success <select id="f-success"><option value="">any</option><option value="1">yes</option><option value="0">no</option></select></label>
  <span id="count"></span>
  <span class="label">rendered in <span id="render-ms"></span> ms</span>
</div>
<table><thead><tr><th>#</th><th>iter</th><th>task</th><th>group</th><th class="num">reward</th><th>success</th>
<th class="num">tests</th><th class="num">turns</th><th class="num">tokens</th><th class="num">adv LOO</th><th class="num">adv GRPO</th><th>error</th></tr></thead>
<tbody id="rows"></tbody></table>
<button id="more" style="display:none">show more</button>
<div id="detail"></div>
<script type="application/json" id="data">__DATA__</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);  // parsed once
const T = D.trajs, PAGE_ROWS = 200;
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s == null ? "" : s).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})[c]);
const fmt = (x, d) => (x == null ? "" : Number(x).toFixed(d == null ? 3 : d));
let shown = [], limit = PAGE_ROWS, openIdx = null, compareIdx = null;

// ---- learning curves: small inline SVG line charts ---------------------------------------------
function chart(title, series, yFixed) {
  const W = 420, H = 220, L = 44, R = 10, TOP = 24, B = 30;
  const pts = series.flatMap((s) => s.points);
  if (!pts.length) return "";
  let x0 = Math.min(...pts.map((p) => p[0])), x1 = Math.max(...pts.map((p) => p[0]));
  let y0 = yFixed ? yFixed[0] : Math.min(...pts.map((p) => p[1])), y1 = yFixed ? yFixed[1] : Math.max(...pts.map((p) => p[1]));
  if (x1 === x0) { x0 -= 1; x1 += 1; } if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  const X = (x) => L + (x - x0) / (x1 - x0) * (W - L - R), Y = (y) => H - B - (y - y0) / (y1 - y0) * (H - TOP - B);
  let s = `<svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-size="10"><text x="${L}" y="14" font-size="12" font-weight="bold">${esc(title)}</text>`;
  s += `<rect x="${L}" y="${TOP}" width="${W - L - R}" height="${H - TOP - B}" fill="none" stroke="#ccc"/>`;
  const xs = new Set();  // iterations are integers: whole-number ticks only
  for (let k = 0; k <= 4; k++) {
    const yv = y0 + (y1 - y0) * k / 4, xv = Math.round(x0 + (x1 - x0) * k / 4);
    s += `<text x="${L - 4}" y="${Y(yv) + 3}" text-anchor="end">${+yv.toFixed(2)}</text>`;
    if (!xs.has(xv) && xv >= x0 && xv <= x1) s += `<text x="${X(xv)}" y="${H - B + 14}" text-anchor="middle">${xv}</text>`;
    xs.add(xv);
  }
  s += `<text x="${W - R}" y="${H - 4}" text-anchor="end">iteration</text>`;
  series.forEach((se, k) => {
    const d = se.points.map((p, j) => (j ? "L" : "M") + X(p[0]).toFixed(1) + " " + Y(p[1]).toFixed(1)).join(" ");
    if (se.line !== false) s += `<path d="${d}" fill="none" stroke="${se.color}" stroke-width="1.5"/>`;
    (se.ci || []).forEach((c) => { s += `<line x1="${X(c[0])}" x2="${X(c[0])}" y1="${Y(c[1])}" y2="${Y(c[2])}" stroke="${se.color}" opacity="0.5"/>`; });
    se.points.forEach((p) => { s += `<circle cx="${X(p[0])}" cy="${Y(p[1])}" r="2.5" fill="${se.color}"><title>${esc(se.name)} @ ${p[0]}: ${+p[1].toFixed(4)}</title></circle>`; });
    s += `<text x="${L + 6 + (k % 3) * 125}" y="${TOP + 12 + Math.floor(k / 3) * 12}" fill="${se.color}">&#9632; ${esc(se.name)}</text>`;
  });
  return s + "</svg>";
}

function drawCurves() {
  const m = D.metrics.filter((r) => r.it != null);
  const series = (key) => m.filter((r) => r[key] != null).map((r) => [r.it, r[key]]);
  const ev = D.evals.filter((e) => e.it != null && e.s != null);
  $("curves").innerHTML =
    chart("reward_mean per iteration", [{name: "reward_mean", color: "#36c", points: series("reward_mean")}]) +
    chart("success", [
      {name: "train success_rate", color: "#3a3", points: series("success_rate")},
      {name: "eval success", color: "#c33", points: ev.map((e) => [e.it, e.s]),
       ci: ev.filter((e) => Array.isArray(e.ci)).map((e) => [e.it, e.ci[0], e.ci[1]])},
    ], [0, 1]) + behaviourCharts(m) + behaviourTable(D.evals);
}

// ---- behaviour figures (idagym.behaviour): shares of episodes, and counts per episode -------------
const COLORS = ["#36c", "#3a3", "#c33", "#c80", "#808", "#088"];
function behaviourCharts(m) {
  const names = [...new Set(m.flatMap((r) => Object.keys(r.b || {})))];
  const line = (n, k) => ({name: n, color: COLORS[k % COLORS.length],
    points: m.filter((r) => r.b && r.b[n] != null).map((r) => [r.it, r.b[n]])});
  const perEpisode = names.filter((n) => n.endsWith("_per_episode"));
  return chart("behaviour: share of episodes", names.filter((n) => !perEpisode.includes(n)).map(line), [0, 1]) +
    chart("behaviour: per episode", perEpisode.map(line));
}
function behaviourTable(evals) {
  const rows = evals.filter((e) => e.b && Object.keys(e.b).length);
  if (!rows.length) return "";
  const names = [...new Set(rows.flatMap((e) => Object.keys(e.b)))];
  return `<table id="behaviour"><thead><tr><th>evaluation</th>${names.map((n) => `<th>${esc(n)}</th>`).join("")}</tr></thead><tbody>` +
    rows.map((e) => `<tr><td>${esc(e.phase)} @ ${esc(e.it)}</td>${names.map((n) => `<td class="num">${fmt(e.b[n])}</td>`).join("")}</tr>`).join("") +
    "</tbody></table>";
}

// ---- the list: filter everything, render only the first `limit` matches ------------------------
function filters() {
  const reward = $("f-reward").value;
  return {it: $("f-it").value, tpl: $("f-tpl").value, task: $("f-task").value.trim().toLowerCase(), reward: reward === "" ? null : Number(reward), success: $("f-success").value};
}

function applyFilters() {
  const f = filters();
  shown = T.filter((t) =>
    (f.it === "" || String(t.it) === f.it) && (f.tpl === "" || t.tpl === f.tpl) && (!f.task || t.task.toLowerCase().includes(f.task)) &&
    (f.reward == null || t.r >= f.reward) && (f.success === "" || t.s === (f.success === "1")));
  limit = PAGE_ROWS;
  $("count").textContent = shown.length + " trajectories" + (shown.length < T.length ? " (of " + T.length + ")" : "");
  renderRows();
}

function renderRows() {
  const rows = shown.slice(0, limit).map((t) =>
    `<tr data-i="${t.i}"${t.i === openIdx ? ' class="open"' : ""}><td>${t.i}</td><td>${esc(t.it)}</td><td>${esc(t.task)}</td><td>${t.g}</td>` +
    `<td class="num">${fmt(t.r)}</td><td class="${t.s ? "ok" : "bad"}">${t.s ? "yes" : "no"}</td>` +
    `<td class="num">${t.nt != null ? esc(t.pc) + "/" + esc(t.nt) : ""}</td><td class="num">${t.turns.length}</td><td class="num">${t.n}</td>` +
    `<td class="num">${fmt(t.loo)}</td><td class="num">${fmt(t.grpo)}</td><td class="bad">${esc(t.err ? String(t.err).slice(0, 60) : "")}</td></tr>`);
  $("rows").innerHTML = rows.join("");
  $("more").style.display = shown.length > limit ? "" : "none";
  $("more").textContent = "show more (" + (shown.length - limit) + " left)";
}

// ---- one trajectory ------------------------------------------------------------------------------
function shade(lp) {  // darker = less likely: alpha grows with -log p, full at log p = -6
  const a = Math.min(1, Math.max(0, -lp / 6));
  return `background:rgba(200,70,20,${a.toFixed(2)});${a > 0.6 ? "color:#fff;" : ""}`;
}

function tokensHtml(t, k) {
  if (t.tok) {
    const toks = t.tok[k] || [];
    if (!toks.length) return "";
    return `<div class="label">generated tokens (${toks.length}), shaded by log-prob: darker = less likely</div><pre>` +
      toks.map((p) => `<span class="tok" style="${shade(p[1])}" title="log p = ${p[1]}">${esc(p[0])}</span>`).join("") + "</pre>";
  }
  const c = (t.tk || [])[k];
  return c && c[0] ? `<div class="label">${c[0]} generated tokens, mean log-prob ${fmt(c[1])}</div>` : "";
}

function groupOf(t) { return T.filter((u) => u.it === t.it && u.g === t.g); }

function openTraj(i) {
  openIdx = i; compareIdx = null;
  const t = T[i];
  if (!t) { $("detail").innerHTML = ""; return; }
  const status = t.term ? "terminated" : t.trunc ? "truncated" : "not finished";
  let h = `<h2>Trajectory ${t.i}: task ${esc(t.task)}</h2><div>iteration ${esc(t.it)} &middot; group ${t.g} &middot; reward <b>${fmt(t.r)}</b> &middot; ` +
    `<span class="${t.s ? "ok" : "bad"}">${t.s ? "success" : "no success"}</span> &middot; ${status}` +
    (t.nt != null ? ` &middot; tests passed ${esc(t.pc)}/${esc(t.nt)}` : "") +
    ` &middot; advantage LOO ${fmt(t.loo)}, GRPO ${fmt(t.grpo)} &middot; ${t.n} generated tokens` + (t.lp != null ? `, mean log-prob ${fmt(t.lp)}` : "") + "</div>";
  if (t.err) h += `<div class="bad">error: ${esc(t.err)}</div>`;
  const others = groupOf(t).filter((u) => u.i !== t.i);
  if (others.length) {
    h += `<div>compare with another rollout of this group: ` +
      others.map((u) => `<button data-cmp="${u.i}">#${u.i} (r=${fmt(u.r, 2)})</button>`).join(" ") + "</div>";
  }
  h += `<div id="diff"></div>`;
  t.turns.forEach((u, k) => {
    h += `<div class="turn"><div class="label">turn ${k}: observation</div><pre>${esc(u.o)}</pre>`;
    if (u.re && u.re !== u.a) h += `<div class="label">response</div><pre>${esc(u.re)}</pre>`;
    h += `<div class="label">action</div><pre>${esc(u.a)}</pre>${tokensHtml(t, k)}</div>`;
  });
  if (t.out) h += `<div class="label">last output</div><pre>${esc(t.out)}</pre>`;
  $("detail").innerHTML = h;
  renderRows();
}

// ---- line diff (LCS) between the actions of two trajectories -------------------------------------
function actionLines(t) { return t.turns.flatMap((u, k) => ["# --- turn " + k + " ---"].concat(String(u.a).split("\n"))); }

function diffLines(a, b) {  // [[op, left, right]], op in "=", "-", "+"
  const n = a.length, m = b.length;
  if (n * m > 4e6) return a.map((x) => ["-", x, ""]).concat(b.map((y) => ["+", "", y]));  // too big for the table
  const L = Array.from({length: n + 1}, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i][j] = a[i] === b[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const out = []; let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { out.push(["=", a[i++], b[j++]]); }
    else if (j >= m || (i < n && L[i + 1][j] >= L[i][j + 1])) out.push(["-", a[i++], ""]);
    else out.push(["+", "", b[j++]]);
  }
  return out;
}

function showCompare(j) {
  const a = T[openIdx], b = T[j];
  if (!a || !b) return;
  compareIdx = j;
  const ops = diffLines(actionLines(a), actionLines(b));
  const rows = [];
  for (let k = 0; k < ops.length;) {  // pair a run of deletions with the insertions after it
    if (ops[k][0] === "=") { rows.push(`<tr><td>${esc(ops[k][1])}</td><td>${esc(ops[k][2])}</td></tr>`); k++; continue; }
    const dels = [], ins = [];
    while (k < ops.length && ops[k][0] === "-") dels.push(ops[k++][1]);
    while (k < ops.length && ops[k][0] === "+") ins.push(ops[k++][2]);
    for (let r = 0; r < Math.max(dels.length, ins.length); r++) {
      rows.push(`<tr><td class="${r < dels.length ? "del" : ""}">${esc(dels[r] ?? "")}</td><td class="${r < ins.length ? "ins" : ""}">${esc(ins[r] ?? "")}</td></tr>`);
    }
  }
  const changed = ops.filter((o) => o[0] !== "=").length;
  $("diff").innerHTML = `<h2>Actions: #${a.i} (reward ${fmt(a.r)}) vs #${b.i} (reward ${fmt(b.r)}), ${changed} lines differ ` +
    `<button id="close-diff">close</button></h2><table class="diff"><tbody>${rows.join("")}</tbody></table>`;
  $("close-diff").onclick = () => { $("diff").innerHTML = ""; compareIdx = null; };
}

// ---- start: filters from the URL (#task=abc&iteration=1 or ?task=abc), then the first render ------
function start() {
  $("run").textContent = D.run;
  document.title = "idagym show: " + D.run;
  const its = [...new Set(T.map((t) => t.it))].filter((x) => x != null).sort((x, y) => x - y);
  $("f-it").insertAdjacentHTML("beforeend", its.map((x) => `<option value="${esc(x)}">${esc(x)}</option>`).join(""));
  const tpls = [...new Set(T.map((t) => t.tpl))].filter((x) => x != null).sort();
  $("f-tpl").insertAdjacentHTML("beforeend", tpls.map((x) => `<option value="${esc(x)}">${esc(x)}</option>`).join(""));
  const q = new URLSearchParams(location.search.slice(1) + "&" + location.hash.slice(1));
  if (q.get("iteration") != null) $("f-it").value = q.get("iteration");
  if (q.get("task") != null) $("f-task").value = q.get("task");
  if (q.get("template") != null) $("f-tpl").value = q.get("template");
  if (q.get("reward") != null) $("f-reward").value = q.get("reward");
  if (q.get("success") != null) $("f-success").value = q.get("success");
  drawCurves();
  applyFilters();
  if (q.get("traj") != null) openTraj(Number(q.get("traj")));
  if (q.get("compare") != null) showCompare(Number(q.get("compare")));
  ["f-it", "f-tpl", "f-task", "f-reward", "f-success"].forEach((id) => $(id).addEventListener("input", applyFilters));
  $("more").onclick = () => { limit += PAGE_ROWS; renderRows(); };
  $("rows").onclick = (e) => { const tr = e.target.closest("tr"); if (tr) openTraj(Number(tr.dataset.i)); };
  $("detail").onclick = (e) => { const b = e.target.closest("button[data-cmp]"); if (b) showCompare(Number(b.dataset.cmp)); };
  $("render-ms").textContent = performance.now().toFixed(0);
}
start();
</script>
</body></html>
"""
