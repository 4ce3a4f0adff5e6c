"""The report's reproducibility record: what ran, on what, with which packages, making which bytes.

Rendered from the run's provenance facts (:class:`repropack.provenance.model.RunFacts`, read from
the run records by the same reader as the crate), so the report and ``ro-crate-metadata.json`` say
the same thing: parameters, environments (package counts, lock hashes, SBOM links, image ID and
digest, SIF digest), every output with its size and sha256, a step-level DAG, and the sortable,
searchable table of instances with their commands as written and the backend that ran them.
Every text is HTML-escaped; commands and values were redacted by the facts' source.
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path
from typing import Any

from repropack.human import fmt_bytes, fmt_seconds

STATE_CLASS = {"ok": "done", "failed": "failed", "cached": "cached", "not-run": "not-run", "interrupted": "interrupted"}
MAX_ROWS = 5_000


def sections(facts: Any, link_base: Path | None = None) -> str:
    """The record's sections as HTML ('' without facts)."""
    if facts is None:
        return ""
    return "\n".join((_params(facts), _environments(facts, link_base), _dag(facts), _outputs(facts)))


def _params(facts: Any) -> str:
    if not facts.params:
        body = '<p class="note">This run used no parameters.</p>'
    else:
        rows = "".join(f"<tr><td><code>{escape(str(k))}</code></td><td><code>{escape(_text(v))}</code></td></tr>"
                       for k, v in sorted(facts.params.items()))
        body = f'<table class="grid"><thead><tr><th>parameter</th><th>value</th></tr></thead><tbody>{rows}</tbody></table>'
    argv = " ".join(facts.argv) or "repropack run"
    return (f'<section id="parameters"><h2>Parameters</h2><p class="note">As this run used them '
            f'(<code>{escape(argv)}</code>); secret ones are masked.</p>{body}</section>')


def _environments(facts: Any, link_base: Path | None) -> str:
    from repropack.provenance import default_dir
    from repropack.provenance.sbom import lock_packages

    root = Path(facts.root)
    items = []
    for name, env in sorted(facts.environments.items()):
        if not env.lock_sha256:  # steps without an environment: nothing locked, nothing to list
            items.append(f'<article class="env" data-env="{escape(name)}"><h3><code>{escape(name)}</code> · '
                         f'{escape(env.runtime or "host")} · not locked</h3><p class="note">These steps ran with the '
                         "host's own tools; no lock, no SBOM.</p></article>")
            continue
        packages, problems = lock_packages(root, env)
        conda = sum(1 for p in packages if p["manager"] == "conda")
        locks = "".join(f'<li><code>{escape(lf.path)}</code> sha256 <code class="digest">{escape(lf.sha256 or "–")}</code></li>'
                        for lf in env.lock_files)
        sbom = default_dir(root, facts.run_id) / "sbom" / f"{name}.cdx.json"
        link = (f'<a href="{escape(_href(sbom, link_base))}">SBOM (CycloneDX)</a>' if sbom.is_file()
                else '<span class="note">no SBOM written (run <code>repropack provenance</code>)</span>')
        images = _image_rows(env)
        warn = "".join(f'<p class="advice">{escape(p)}</p>' for p in problems)
        items.append(
            f'<article class="env" data-env="{escape(name)}"><h3><code>{escape(name)}</code> · {escape(env.runtime or "host")}'
            f' · <span class="pkgcount">{len(packages)} package(s)</span> ({conda} conda, {len(packages) - conda} PyPI) · {link}</h3>'
            f'<p class="meta">lock <code class="digest">{escape(env.lock_sha256 or "none")}</code></p>'
            f'<ul class="locks">{locks}</ul>{images}{warn}</article>')
    base = facts.base_image
    base_line = (f'<p class="meta">base image <code>{escape(base.reference)}</code> '
                 f'<code class="digest">{escape(base.digest or "unpinned")}</code></p>') if base and base.reference else ""
    body = "".join(items) or '<p class="note">No locked environment: the steps ran with the host\'s tools.</p>'
    return f'<section id="environments"><h2>Environments</h2>{base_line}{body}</section>'


def _image_rows(env: Any) -> str:
    rows = [(label, value) for label, value in (("image", env.image_name), ("image ID", env.image_id),
                                                ("image digest", env.image_digest), ("SIF digest", env.sif_digest)) if value]
    if not rows:
        return ""
    return '<ul class="images">' + "".join(f"<li>{escape(k)} <code class=\"digest\">{escape(v)}</code></li>"
                                           for k, v in rows) + "</ul>"


def _href(path: Path, base: Path | None) -> str:
    if base is not None:
        return os.path.relpath(path, base)
    return path.resolve().as_uri()


def _outputs(facts: Any) -> str:
    rows = []
    for inst in facts.instances:
        outs = inst.produced if inst.state == "ok" else (
            [_Sum(p, facts.sums[p]) for p in inst.outputs if p in facts.sums] if inst.state == "cached" else [])
        for out in outs:
            digest = facts.sums.get(out.path, out.sha256) or "–"
            rows.append(f'<tr><td><code>{escape(out.path)}</code></td><td class="num" data-sort="{out.size or 0}">'
                        f'{escape(fmt_bytes(out.size))}</td><td><code class="digest">{escape(digest)}</code></td>'
                        f'<td><code>{escape(inst.id)}</code>{" (cached)" if inst.state == "cached" else ""}</td></tr>')
    if not rows:
        return '<section id="outputs"><h2>Outputs</h2><p class="note">This run left no output current.</p></section>'
    return (f'<section id="outputs"><h2>Outputs <span class="muted">{len(rows)}</span></h2>'
            '<p class="note">Every output the run leaves current, as <code>SHA256SUMS</code> lists it '
            '(check with <code>repropack verify</code>).</p><table class="grid sortable"><thead><tr><th>path</th>'
            f'<th>size</th><th>sha256</th><th>made by</th></tr></thead><tbody>{"".join(rows)}</tbody></table></section>')


class _Sum:
    def __init__(self, path: str, sha256: str):
        self.path, self.sha256, self.size = path, sha256, None


# -- the step-level DAG ---------------------------------------------------------------------
def _dag(facts: Any) -> str:
    steps = list(dict.fromkeys(i.step for i in facts.instances))
    if not steps:
        return ('<section id="dag"><h2>Steps</h2><p class="note">This run\'s records list no step instance '
                '(format 1 recorded only the instances that ran).</p></section>')
    step_of = {i.id: i.step for i in facts.instances}
    edges = sorted({(step_of[d], i.step) for i in facts.instances for d in i.deps if d in step_of and step_of[d] != i.step})
    depth = {s: 0 for s in steps}
    for _ in steps:  # longest-path layering; a DAG settles within len(steps) rounds
        for a, b in edges:
            depth[b] = max(depth[b], depth[a] + 1)
    columns: dict[int, list[str]] = {}
    for s in steps:
        columns.setdefault(depth[s], []).append(s)
    w, h, gx, gy = 190, 58, 70, 18
    pos = {s: (20 + d * (w + gx), 20 + n * (h + gy)) for d, col in columns.items() for n, s in enumerate(col)}
    width = 40 + (max(columns) + 1) * (w + gx) - gx
    height = 40 + max(len(c) for c in columns.values()) * (h + gy) - gy
    parts = ['<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" fill="#8c959f"/></marker></defs>']
    for a, b in edges:
        (x1, y1), (x2, y2) = pos[a], pos[b]
        parts.append(f'<path class="edge" d="M{x1 + w} {y1 + h / 2} C{x1 + w + gx / 2} {y1 + h / 2} {x2 - gx / 2} {y2 + h / 2} '
                     f'{x2} {y2 + h / 2}" marker-end="url(#arrow)"/>')
    for s in steps:
        parts.append(_node(s, pos[s], w, h, [i for i in facts.instances if i.step == s]))
    return (f'<section id="dag"><h2>Steps</h2><p class="note">The workflow\'s steps and how their instances ended in '
            f'this run; an arrow is a step reading what another made.</p><div class="dag"><svg width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="step graph">{"".join(parts)}'
            '</svg></div></section>')


def _node(step: str, at: tuple[int, int], w: int, h: int, insts: list[Any]) -> str:
    counts: dict[str, int] = {}
    for i in insts:
        counts[i.state] = counts.get(i.state, 0) + 1
    worst = next((s for s in ("failed", "interrupted", "not-run", "ok", "cached") if counts.get(s)), "ok")
    backends = sorted({"/".join(p for p in (i.backend, i.runtime) if p) or "local" for i in insts})
    summary = " · ".join(f"{n} {s}" for s, n in counts.items())
    x, y = at
    label = step if len(step) <= 24 else step[:23] + "…"
    return (f'<g class="node s-{STATE_CLASS.get(worst, worst)}" data-step="{escape(step)}"><title>{escape(step)}: {escape(summary)}'
            f' ({escape(", ".join(backends))})</title><rect x="{x}" y="{y}" width="{w}" height="{h}" rx="8"/>'
            f'<text x="{x + 10}" y="{y + 20}" class="name">{escape(label)}</text>'
            f'<text x="{x + 10}" y="{y + 36}">{escape(summary)}</text>'
            f'<text x="{x + 10}" y="{y + 50}" class="backend">{escape(", ".join(backends))}</text></g>')


# -- the instance table ---------------------------------------------------------------------
def instance_table(facts: Any) -> str:
    rows = []
    for inst in facts.instances[:MAX_ROWS]:
        last = inst.attempts[-1] if inst.attempts else None
        took = (inst.end - inst.start) if inst.start is not None and inst.end is not None else None
        backend = "/".join(p for p in ((last.backend if last else None) or inst.backend, inst.runtime) if p)
        job = f" job {last.job_id}" if last and last.job_id else ""
        exit_text = "" if last is None or last.exit_status is None else str(last.exit_status)
        peak = max((a.peak_rss for a in inst.attempts if a.peak_rss is not None), default=None)
        cached = f"cached from {inst.cached_from}" if inst.cached_from else ""
        rows.append(
            f'<tr class="s-{STATE_CLASS.get(inst.state, inst.state)}"><td><code>{escape(inst.id)}</code></td>'
            f'<td>{escape(inst.step)}</td><td>{escape(inst.state)}{(" · " + escape(last.failure)) if last and last.failure else ""}'
            f'</td><td>{escape(backend or "–")}{escape(job)}</td><td class="num">{escape(exit_text)}</td>'
            f'<td class="num" data-sort="{len(inst.attempts)}">{len(inst.attempts)}</td>'
            f'<td class="num" data-sort="{took or 0}">{escape(fmt_seconds(took))}</td>'
            f'<td class="num" data-sort="{peak or 0}">{escape(fmt_bytes(peak))}</td>'
            f'<td><code class="command">{escape(inst.command or cached)}</code></td></tr>')
    more = (f'<p class="note">First {MAX_ROWS:,} of {len(facts.instances):,}; the crate has them all.</p>'
            if len(facts.instances) > MAX_ROWS else "")
    return (
        f'<section id="instances"><h2>Instances <span class="muted">{len(facts.instances):,}</span></h2>'
        '<div class="controls"><input id="instance-search" type="search" placeholder="search id, step, state, backend, command"'
        ' aria-label="search the instances"><span id="instance-count" class="note"></span></div>'
        '<table id="instance-table" class="grid sortable"><thead><tr><th>instance</th><th>step</th><th>state</th>'
        '<th>backend</th><th>exit</th><th>attempts</th><th>took</th><th>peak memory</th><th>command (as written)</th>'
        f'</tr></thead><tbody>{"".join(rows)}</tbody></table>{more}</section>')


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
