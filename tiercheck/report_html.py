"""report.html: the verdicts as one self-contained page (inline CSS, no script, nothing fetched).

Rendered from the tiercheck.json document (docs/report-schema.md): the run's settings (implementation,
profile, seed) and environment (Python, Hypothesis, the servers: whatever keys the runner recorded), a verdict
table, the measured figures (not judged), one card per failing test with its counterexample steps and replay
command, and the per-test list.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

_CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg:#f6f8fa;
        --pass:#1a7f37; --pass-bg:#dafbe1; --fail:#cf222e; --fail-bg:#ffebe9;
        --na:#9a6700; --na-bg:#fff8c5; --nr:#59636e; --nr-bg:#eff2f5; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 -apple-system, "Segoe UI", "Helvetica Neue", Arial, sans-serif; color: var(--fg); }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 32px 0 10px; }
h3 { font-size: 15px; margin: 0; }
code, pre { font: 12.5px/1.45 ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace; }
pre { background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px;
      margin: 6px 0; white-space: pre-wrap; overflow-wrap: break-word; overflow-x: auto; }
.muted { color: var(--muted); }
header { display: flex; align-items: center; gap: 16px; border-bottom: 1px solid var(--line); padding-bottom: 14px; }
.badge { font-weight: 700; font-size: 15px; padding: 4px 14px; border-radius: 999px; }
.badge.pass { color: #fff; background: var(--pass); } .badge.fail { color: #fff; background: var(--fail); }
dl.run { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 14px 0 0; }
dl.run dt { color: var(--muted); } dl.run dd { margin: 0; overflow-wrap: anywhere; }
.chips { display: flex; gap: 8px; margin: 16px 0 0; flex-wrap: wrap; }
.chip { border-radius: 6px; padding: 4px 10px; font-weight: 600; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--bg); font-weight: 600; white-space: nowrap; }
th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.id { font-weight: 700; white-space: nowrap; }
.v { display: inline-block; border-radius: 999px; padding: 0 10px; font-weight: 600; white-space: nowrap; }
.v-pass { color: var(--pass); background: var(--pass-bg); } .v-FAIL { color: var(--fail); background: var(--fail-bg); }
.v-na { color: var(--na); background: var(--na-bg); } .v-nr { color: var(--nr); background: var(--nr-bg); }
tr.row-FAIL td { background: #fff8f7; }
.notes { color: var(--muted); font-size: 13px; overflow-wrap: anywhere; }
.card { border: 1px solid var(--line); border-left: 4px solid var(--fail); border-radius: 6px; padding: 12px 16px;
        margin: 12px 0; }
.card .test { margin: 2px 0 8px; overflow-wrap: anywhere; }
.card .message { font-weight: 600; color: var(--fail); white-space: pre-wrap; overflow-wrap: anywhere; }
ol.steps { margin: 6px 0; padding-left: 34px; } ol.steps li { margin: 2px 0; }
ol.steps code { white-space: pre-wrap; overflow-wrap: anywhere; }
.label { font-weight: 600; margin-top: 10px; }
details summary { cursor: pointer; color: var(--muted); margin-top: 8px; }
pre.replay .w { white-space: nowrap; }
h2.env { font-size: 14px; margin: 14px 0 4px; color: var(--muted); }
footer { margin-top: 36px; color: var(--muted); font-size: 12px; }
"""

_VERDICT_CLASS = {"pass": "v-pass", "FAIL": "v-FAIL", "not applicable": "v-na", "not run": "v-nr"}
_OUTCOME_CLASS = {"passed": "v-pass", "failed": "v-FAIL", "skipped": "v-na", "not run": "v-nr"}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _pill(text: str, css: str) -> str:
    return f'<span class="v {css}">{_e(text)}</span>'


def _anchor(nodeid: str) -> str:
    return "f-" + "".join(c if c.isalnum() else "-" for c in nodeid)


def _seed(document: dict[str, Any]) -> str:
    if document.get("derandomized"):
        return "derandomized (fixed per test)"
    if document.get("seed") is not None:
        return f"--hypothesis-seed={document['seed']}"
    return "not recorded"


def _test_notes(test: dict[str, Any]) -> str:
    """A test's skip reason, its notes, and whether it counted toward its verdicts."""
    lines = [test.get("reason", ""), *test.get("notes", [])]
    if test.get("selftest"):
        lines.append("self-test of the harness: not counted")
    elif test.get("exercised_implementation") is False:
        lines.append("did not exercise the implementation: not counted")
    return "<br>".join(_e(line) for line in lines if line)


def _failure_card(verdict: dict[str, Any], failure: dict[str, Any]) -> str:
    out = [f'<div class="card" id="{_anchor(failure.get("test", ""))}">']
    out.append(f"<h3>{_e(verdict['id'])} {_e(verdict.get('title', ''))} — FAIL</h3>")
    out.append(f'<div class="test"><code>{_e(failure.get("test", ""))}</code></div>')
    if failure.get("message"):
        out.append(f'<div class="message">{_e(failure["message"])}</div>')
    steps = failure.get("steps") or []
    if steps:
        out.append('<div class="label">Counterexample (shrunk)</div><ol class="steps">')
        out += [f"<li><code>{_e(step)}</code></li>" for step in steps]
        out.append("</ol>")
    if failure.get("replay"):
        # one nowrap span per word: a line may break between words, never inside "--tb=short"
        words = " ".join(f'<span class="w">{_e(word)}</span>' for word in failure["replay"].split(" "))
        out.append(f'<div class="label">Replay this case</div><pre class="replay">{words}</pre>')
    if failure.get("reproduce_failure"):
        out.append(
            f'<div class="muted">or decorate the test with <code>{_e(failure["reproduce_failure"])}</code></div>'
        )
    out.append(f"<details><summary>Full failure output</summary><pre>{_e(failure.get('detail', ''))}</pre></details>")
    out.append("</div>")
    return "\n".join(out)


def _measurements(measurements: list[dict[str, Any]]) -> list[str]:
    """Measured figures (re-admission seconds, staleness, memory share...): reported beside the verdicts, not judged."""
    if not measurements:
        return []
    out = [f"<h2>Measurements ({len(measurements)})</h2>"]
    out.append('<p class="muted">Measured during the run, not judged: they never change a verdict.</p>')
    out.append('<table class="measurements"><thead><tr><th>Property</th><th>Measure</th>')
    out.append('<th class="num">Value</th><th>Unit</th><th>Test</th></tr></thead><tbody>')
    for m in measurements:
        value = m.get("value")
        shown = "—" if value is None else (f"{value:.4g}" if isinstance(value, float) else str(value))
        out.append(
            f'<tr><td class="id">{_e(m.get("property", ""))}</td><td>{_e(m.get("name", ""))}</td>'
            f'<td class="num">{_e(shown)}</td><td>{_e(m.get("unit", ""))}</td>'
            f'<td class="notes"><code>{_e(m.get("test", ""))}</code></td></tr>'
        )
    out.append("</tbody></table>")
    return out


def render_html(document: dict[str, Any]) -> str:
    verdicts = document.get("verdicts", [])
    counts = {name: sum(1 for v in verdicts if v["verdict"] == name) for name in _VERDICT_CLASS}
    failed = counts["FAIL"] > 0
    impl = document.get("impl", "")
    title = f"tiercheck verify — {impl} — {'FAIL' if failed else 'pass'}"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>",
        "<header>",
        f'<span class="badge {"fail" if failed else "pass"}">{"FAIL" if failed else "PASS"}</span>',
        f"<div><h1>tiercheck verify</h1><code>{_e(impl)}</code></div>",
        "</header>",
        '<dl class="run">',
    ]
    run = {
        "profile": document.get("profile", ""),
        "seed": _seed(document),
        "generated": document.get("generated_at", "not recorded"),
        "duration": f"{document['duration_seconds']:.1f} s" if "duration_seconds" in document else "not recorded",
        "report schema": f"version {document.get('schema_version')}",
    }
    out += [f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in run.items()]
    out.append("</dl>")
    environment = document.get("environment") or {}
    if environment:  # Python, Hypothesis, the servers that served the run...: whatever the runner recorded
        out.append('<h2 class="env">Environment</h2><dl class="run env">')
        out += [f"<dt>{_e(k)}</dt><dd><code>{_e(v)}</code></dd>" for k, v in environment.items()]
        out.append("</dl>")
    out.append('<div class="chips">')
    out += [
        f'<span class="chip {_VERDICT_CLASS[name]}">{counts[name]} {_e(name)}</span>'
        for name in _VERDICT_CLASS
        if counts[name]
    ]
    out.append("</div>")

    out.append("<h2>Verdicts</h2><table><thead><tr>")
    out += [f"<th>{h}</th>" for h in ("ID", "Property", "Verdict")]
    out += [f'<th class="num">{h}</th>' for h in ("Tests", "Examples", "Time (s)")]
    out.append("<th>Notes</th>")
    out.append("</tr></thead><tbody>")
    for v in verdicts:
        if v["verdict"] == "FAIL":
            notes = ", ".join(
                f'<a href="#{_anchor(f.get("test", ""))}">{_e(f.get("test", "").rsplit("::", 1)[-1])}</a>'
                for f in v.get("failures", [])
            )
        else:
            notes = "<br>".join(_e(r) for r in v.get("reasons", []))
        out.append(
            f'<tr class="row-{_e(v["verdict"]).replace(" ", "-")}"><td class="id">{_e(v["id"])}</td>'
            f"<td>{_e(v.get('title', ''))}</td>"
            f"<td>{_pill(v['verdict'], _VERDICT_CLASS.get(v['verdict'], 'v-nr'))}</td>"
            f'<td class="num">{_e(v.get("tests", 0))}</td><td class="num">{_e(v.get("examples", 0))}</td>'
            f'<td class="num">{float(v.get("seconds", 0)):.1f}</td><td class="notes">{notes}</td></tr>'
        )
    out.append("</tbody></table>")

    out += _measurements(document.get("measurements") or [])

    failures = [(v, f) for v in verdicts for f in v.get("failures", [])]
    if failures:
        out.append(f"<h2>Failures ({len(failures)})</h2>")
        out += [_failure_card(v, f) for v, f in failures]

    tests = document.get("tests", [])
    if tests:
        out.append(f"<h2>Tests ({len(tests)})</h2><details><summary>every test run, with its outcome</summary>")
        out.append('<table><thead><tr><th>Test</th><th>Properties</th><th>Outcome</th><th class="num">Examples</th>')
        out.append('<th class="num">Time (s)</th><th>Reason and notes</th></tr></thead><tbody>')
        for t in tests:
            out.append(
                f"<tr><td><code>{_e(t.get('nodeid', ''))}</code></td><td>{_e(', '.join(t.get('properties', [])))}</td>"
                f"<td>{_pill(t.get('outcome', ''), _OUTCOME_CLASS.get(t.get('outcome', ''), 'v-nr'))}</td>"
                f'<td class="num">{_e(t.get("examples", 0))}</td>'
                f'<td class="num">{float(t.get("seconds", 0)):.1f}</td>'
                f'<td class="notes">{_test_notes(t)}</td></tr>'
            )
        out.append("</tbody></table></details>")

    out.append(
        "<footer>Written by <code>tiercheck verify --report-dir</code>; the same data is in tiercheck.json "
        "(docs/report-schema.md) and junit.xml.</footer>"
    )
    out.append("</main></body></html>")
    return "\n".join(out) + "\n"


def write_html(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(document), encoding="utf-8")
