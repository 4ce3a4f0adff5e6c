"""Render a :class:`Report` as ONE self-contained HTML page (inline CSS, JS and SVG; no network).

The summary, failures, resource table and critical path are rendered here, so
they read without JavaScript; the timeline is drawn by the inline script from a
JSON block. Every text from the run (step names, ids, messages, logs) is escaped
with :func:`html.escape`, and the JSON block has ``<``, ``>`` and ``&`` written as
``\\u003c``-style escapes so nothing in it can close the script element.
"""

from __future__ import annotations

import json
import time
from html import escape
from importlib import resources
from typing import Any

from repropack.human import fmt_bytes, fmt_seconds
from repropack.report.record import instance_table, sections
from repropack.report.model import CACHED, DONE, FAILED, INTERRUPTED, NOT_RUN, RUNNING, STATES, Instance, Report

MAX_BARS = 20_000  # beyond this the timeline keeps failed, critical and the longest instances
MAX_TABLE_ROWS = 2_000
PALETTE = ("#4e79a7", "#59a14f", "#9c755f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#86bcb6", "#8cd17d",
           "#bab0ac", "#499894", "#d4a6c8")
STATE_CODE = {DONE: 0, FAILED: 1, RUNNING: 2, INTERRUPTED: 3, CACHED: 4, NOT_RUN: 5}


def render_html(report: Report) -> str:
    step_names = [s.name for s in report.steps]
    colors = {name: PALETTE[n % len(PALETTE)] for n, name in enumerate(step_names)}
    body = "\n".join((
        _header(report),
        _cards(report),
        _nothing_ran(report),
        _failures(report),
        _timeline(report, colors),
        _resources(report, colors),
        _critical(report, colors),
        sections(report.provenance, report.link_base),
        instance_table(report.provenance) if report.provenance is not None else _all_instances(report),
        f'<footer>repropack report · generated {_when(report.generated)} · '
        f'dependencies from {escape(report.deps_source)}</footer>',
    ))
    data = _json_for_script(_timeline_data(report, step_names, colors))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n"
        f"<title>{escape(report.project)} · run {escape(report.run_id)} · repropack report</title>\n"
        f"<style>\n{_asset('report.css')}\n</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n"
        f'<script type="application/json" id="report-data">{data}</script>\n'
        f"<script>\n{_asset('report.js')}\n</script>\n</body>\n</html>\n"
    )


def _asset(name: str) -> str:
    return resources.files("repropack.report").joinpath("assets", name).read_text(encoding="utf-8")


def _json_for_script(data: Any) -> str:
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    for raw, safe in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, safe)
    return text


# -- formatting (bytes and seconds: repropack.human) ---------------------------------------
def fmt_pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.0f}%"


def fmt_hours(seconds: float) -> str:
    hours = seconds / 3600
    if hours == 0:
        return "0"
    if hours >= 100:
        return f"{hours:,.0f}"
    if hours >= 0.01:
        return f"{hours:.2f}"
    return f"{hours:.4f}" if hours >= 0.0001 else "< 0.0001"


def _efficiency(cpu: float, reserved: float) -> float | None:
    """CPU used over CPU held; None when too little was held for the ratio to mean anything
    (process start-up is counted in CPU time but can fall outside a sub-millisecond wall)."""
    return cpu / reserved if reserved >= 0.05 else None


def _when(stamp: float | None) -> str:
    if not stamp:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))


# -- sections ----------------------------------------------------------------------------
def _header(report: Report) -> str:
    argv = " ".join(report.argv) or "repropack run"
    return (
        '<header>\n<div class="title"><h1>' + escape(report.project) + '</h1>'
        f'<span class="badge status-{escape(report.status)}">{escape(report.status)}</span></div>\n'
        f'<p class="meta">run <code>{escape(report.run_id)}</code> · started {_when(report.start)}'
        f' · ended {_when(report.end)} · host <code>{escape(report.host)}</code>'
        f' · profile <code>{escape(report.profile or "local")}</code></p>\n'
        f'<p class="meta"><code class="argv">{escape(argv)}</code></p>\n</header>'
    )


def _card(label: str, value: str, detail: str = "", cls: str = "") -> str:
    return (f'<div class="card {cls}"><div class="label">{escape(label)}</div>'
            f'<div class="value">{value}</div><div class="detail">{detail}</div></div>')


def _cards(report: Report) -> str:
    counts = {s: report.count(s) for s in STATES}
    ran = counts[DONE] + counts[FAILED] + counts[RUNNING] + counts[INTERRUPTED]
    parts = [f'<span class="chip s-{s}">{counts[s]} {escape(s)}</span>' for s in STATES if counts[s]]
    cpu, reserved = report.cpu_seconds, report.reserved_cpu_seconds
    eff = _efficiency(cpu, reserved)
    parallel = reserved / report.wall if report.wall > 0 else None
    crit_share = report.critical_seconds / report.wall if report.wall else None
    peak = max((i.peak_rss for i in report.instances.values() if i.peak_rss is not None), default=None)
    cards = [
        _card("Instances", f"{ran:,} ran", " ".join(parts), "failed" if counts[FAILED] else ""),
        _card("Wall time", escape(fmt_seconds(report.wall)),
              f"{len(report.steps)} step(s) · {parallel:.1f} cpus held on average" if parallel else f"{len(report.steps)} step(s)"),
        _card("CPU-hours", fmt_hours(cpu),
              f"{escape(fmt_seconds(cpu))} of CPU · {fmt_hours(reserved)} h reserved (cpus × wall), {fmt_pct(eff)} used"),
        _card("Critical path", escape(fmt_seconds(report.critical_seconds)),
              f"{len(report.critical_path)} instance(s) · {fmt_pct(crit_share)} of the wall time"),
        _card("Peak memory", escape(fmt_bytes(peak)), "largest of one instance"),
    ]
    if report.cost is not None:  # a profile with a price table (aws-batch `cost`)
        by_step = " · ".join(f"{escape(s.name)} {s.cost:.4f}" for s in report.steps if s.cost is not None)
        cards.append(_card("Estimated cost", f"{report.cost:.4f} {escape(report.currency or '')}", by_step))
    return '<section class="cards">' + "".join(cards) + "</section>"


def _nothing_ran(report: Report) -> str:
    if any(i.attempts for i in report.instances.values()):
        return ""
    cached = report.count(CACHED)
    why = (f"all {cached:,} instances were up to date, finished by earlier runs with the same inputs, "
           "commands and environments" if cached else "no instance started")
    return f'<section class="quiet"><h2>Nothing ran</h2><p class="note">In this run {why}.</p></section>'


def _failures(report: Report) -> str:
    failed = report.failed
    if not failed:
        return ""
    items = [_failure(inst) for inst in failed[:200]]
    more = f'<p class="note">… and {len(failed) - 200} more failed instance(s).</p>' if len(failed) > 200 else ""
    return (f'<section id="failures"><h2>Failures <span class="count">{len(failed)}</span></h2>\n'
            + "\n".join(items) + more + "</section>")


def _failure(inst: Instance) -> str:
    attempts = "".join(
        f'<li>attempt {a.attempt}: <span class="fclass">{escape(a.failure or a.status)}</span>'
        + (f" · exit {a.exit}" if a.exit is not None else "")
        + (f" · signal {a.signal}" if a.signal else "")
        + (f" · {escape(fmt_seconds(a.wall))}" if a.wall is not None else "")
        + (f" · peak {escape(fmt_bytes(a.peak_rss))}" if a.peak_rss is not None else "")
        + (f" · asked {escape(fmt_bytes(a.req_memory))}" if a.req_memory else "")
        + "</li>" for a in inst.attempts)
    logs = "".join(f'<div class="log"><div class="logname">{escape(name)} (last lines)</div>'
                   f"<pre>{escape(text)}</pre></div>" for name, text in inst.log_tail.items())
    command = f'<div class="logname">command</div><pre class="cmd">{escape(inst.command)}</pre>' if inst.command else ""
    where = f'<p class="path">run directory <code>{escape(inst.dir)}</code></p>' if inst.dir else ""
    return (
        f'<article class="failure" data-id="{escape(inst.id)}">'
        f'<h3><span class="fclass">{escape(inst.failure or "failed")}</span> <code>{escape(inst.id)}</code></h3>'
        f'<p class="message">{escape(inst.message)}</p>'
        + (f'<p class="cause">cause: <strong>{escape(inst.cause["cause"])}</strong> '
           f'<span class="evidence">({escape(inst.cause["evidence"])})</span><br>'
           f'fix: {escape(inst.cause["fix"])}</p>' if inst.cause else "")
        + (f'<ul class="attempts">{attempts}</ul>' if attempts else "")
        + command + logs + where
        + f'<p class="hint">more: <code>repropack logs {escape(inst.id)}</code></p></article>'
    )


def _timeline(report: Report, colors: dict[str, str]) -> str:
    legend = "".join(f'<span class="key"><i style="background:{c}"></i>{escape(n)}</span>' for n, c in colors.items())
    legend += ('<span class="key"><i class="k-failed"></i>failed</span>'
               '<span class="key"><i class="k-crit"></i>critical path</span>')
    return (
        '<section id="timeline-section"><h2>Timeline</h2>\n'
        '<p class="note">One bar per instance that ran, from its first start to its end (retries included), '
        'grouped by step; parallel instances stack. Hover a bar for its figures.</p>\n'
        f'<div class="controls"><label><input type="checkbox" id="only-critical"> critical path only</label>'
        f'<span class="legend">{legend}</span></div>\n'
        '<div id="timeline" class="timeline"><noscript>The timeline needs JavaScript.</noscript></div>\n'
        '<div id="tooltip" class="tooltip" hidden></div>\n'
        '<p id="timeline-note" class="note"></p></section>'
    )


def _meter(fraction: float | None, over: bool = False) -> str:
    if fraction is None:
        return '<span class="meter empty"></span>'
    width = max(1.0, min(100.0, fraction * 100))
    cls = "meter over" if over else "meter"
    return f'<span class="{cls}"><b style="width:{width:.1f}%"></b></span>'


def _resources(report: Report, colors: dict[str, str]) -> str:
    rows = []
    for s in report.steps:
        counts = ", ".join(f"{n} {escape(k)}" for k, n in s.counts.items())
        eff = _efficiency(s.cpu_seconds, s.reserved_cpu_seconds)
        mem = s.memory_use
        if not s.reserved_cpu_seconds and s.peak_rss_max is None:
            rows.append(f'<tr><td><i class="dot" style="background:{colors[s.name]}"></i><code>{escape(s.name)}</code></td>'
                        f'<td class="num">{counts}</td><td colspan="5" class="note">nothing ran in this run</td></tr>')
            continue
        mem_text = (f"{escape(fmt_bytes(s.peak_rss_max))} of {escape(fmt_bytes(s.req_memory))} ({fmt_pct(mem)})"
                    if s.req_memory else f"{escape(fmt_bytes(s.peak_rss_max))} (none requested)")
        advice = _advice(s)
        rows.append(
            f'<tr><td><i class="dot" style="background:{colors[s.name]}"></i><code>{escape(s.name)}</code></td>'
            f'<td class="num">{counts}</td>'
            f'<td class="num">{escape(fmt_seconds(s.wall_median))} / {escape(fmt_seconds(s.wall_max))}</td>'
            f'<td>{_meter(min(eff, 1.0) if eff is not None else None)}<span class="mtext">{escape(fmt_seconds(s.cpu_seconds))} of '
            f'{escape(fmt_seconds(s.reserved_cpu_seconds))} on {s.req_cpus} cpu ({fmt_pct(eff)})</span></td>'
            f'<td>{_meter(mem, over=bool(mem and mem > 1))}<span class="mtext">{mem_text}</span></td>'
            f'<td class="num">{escape(fmt_seconds(s.cpu_seconds if s.reserved_cpu_seconds else None))}</td>'
            f'<td class="advice">{advice}</td></tr>'
        )
    return (
        '<section id="resources"><h2>Resources: used against requested</h2>\n'
        '<table class="grid"><thead><tr><th>step</th><th>instances</th><th>wall median / max</th>'
        '<th>CPU time used of cpus × wall</th><th>peak memory of requested</th><th>CPU time</th><th></th></tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table></section>'
    )


def _advice(s: Any) -> str:
    mem, eff = s.memory_use, s.cpu_efficiency
    notes = []
    if mem is not None and mem > 1:
        notes.append("peak memory above the request")
    elif mem is not None and mem < 0.25 and s.req_memory and s.req_memory > 500_000_000:
        notes.append("asks for over 4× the memory it used")
    if eff is not None and s.req_cpus > 1 and eff < 0.5 and (s.wall_max or 0) > 1:
        notes.append(f"uses under half of its {s.req_cpus} cpus")
    return escape("; ".join(notes))


def _critical(report: Report, colors: dict[str, str]) -> str:
    if not report.critical_path:
        return ""
    rows = []
    for iid in report.critical_path:
        inst = report.instances[iid]
        offset = (inst.start - report.start) if inst.start is not None and report.start else None
        rows.append(f'<tr><td><i class="dot" style="background:{colors.get(inst.step, "#888")}"></i>'
                    f'<code>{escape(iid)}</code></td><td class="num">+{escape(fmt_seconds(offset))}</td>'
                    f'<td class="num">{escape(fmt_seconds(inst.span))}</td><td>{escape(inst.state)}</td></tr>')
    return (
        '<section id="critical"><h2>Critical path</h2>\n'
        '<p class="note">The chain of dependent instances with the longest total duration: '
        'to finish sooner, speed these up.</p>'
        '<table class="grid"><thead><tr><th>instance</th><th>started</th><th>took</th><th>state</th></tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table></section>'
    )


def _all_instances(report: Report) -> str:
    shown = list(report.instances.values())[:MAX_TABLE_ROWS]
    rows = "".join(
        f'<tr class="s-{escape(i.state)}"><td><code>{escape(i.id)}</code></td><td>{escape(i.state)}</td>'
        f'<td class="num">{len(i.attempts)}</td><td class="num">{escape(fmt_seconds(i.span if i.attempts else None))}</td>'
        f'<td class="num">{escape(fmt_seconds(i.cpu if i.attempts else None))}</td>'
        f'<td class="num">{escape(fmt_bytes(i.peak_rss))}</td><td>{escape(i.backend or "")}</td></tr>' for i in shown)
    more = (f'<p class="note">First {MAX_TABLE_ROWS:,} of {len(report.instances):,} instances; '
            "<code>repropack report --json</code> has them all.</p>") if len(report.instances) > MAX_TABLE_ROWS else ""
    return (
        f'<section id="instances"><details><summary><h2>All instances ({len(report.instances):,})</h2></summary>'
        '<table class="grid"><thead><tr><th>instance</th><th>state</th><th>attempts</th><th>took</th><th>CPU</th>'
        f'<th>peak memory</th><th>backend</th></tr></thead><tbody>{rows}</tbody></table>{more}</details></section>'
    )


# -- data for the timeline script ------------------------------------------------------
def _timeline_data(report: Report, step_names: list[str], colors: dict[str, str]) -> dict[str, Any]:
    ran = [i for i in report.instances.values() if i.attempts and i.start is not None]
    omitted = 0
    if len(ran) > MAX_BARS:
        keep = sorted(ran, key=lambda i: (not i.critical, i.state != FAILED, -i.span))[:MAX_BARS]
        chosen = {i.id for i in keep}
        omitted = len(ran) - len(keep)
        ran = [i for i in ran if i.id in chosen]
    t0 = report.start or min((i.start for i in ran), default=0.0)
    now = report.end or report.generated
    index = {name: n for n, name in enumerate(step_names)}
    bars = []
    for inst in ran:
        end = inst.end if inst.end is not None else now
        tries = [[round(a.start - t0, 4), round((a.end or now) - a.start, 4), a.failure or a.status]
                 for a in inst.attempts[:-1] if a.start is not None]
        last = inst.attempts[-1]
        bars.append([inst.id, index.get(inst.step, 0), round(inst.start - t0, 4), round(max(0.0, end - inst.start), 4),
                     STATE_CODE.get(inst.state, 0), 1 if inst.critical else 0, _num(inst.cpu), inst.peak_rss,
                     last.req_memory, last.req_cpus, len(inst.attempts), inst.failure, tries])
    return {"steps": step_names, "colors": [colors[n] for n in step_names], "wall": round(max(report.wall, 0.0), 4),
            "states": list(STATE_CODE), "bars": bars, "omitted": omitted, "critical": report.critical_path}


def _num(x: float | None) -> float | None:
    return None if x is None else round(x, 4)
