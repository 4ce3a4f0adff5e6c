"""``repropack report``: one self-contained HTML file describing the last run."""

from __future__ import annotations

from pathlib import Path

import click

from repropack.cli._options import echo_json, json_output, project_dir


@click.command("report")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the HTML (default: .repropack/reports/<run-id>.html in the project).")
@click.option("--log-lines", type=click.IntRange(min=0), default=30, show_default=True,
              help="Lines of each failed instance's stdout and stderr to include.")
@project_dir
@json_output
def command(output, log_lines, project_dir, as_json):
    """Write a self-contained HTML report of the last run: timeline, resources against requests,
    CPU-hours, critical path and failures with their log tails. With --json, also print the
    report's data on stdout."""
    from repropack.report import collect, render_html, to_record

    root = project_dir.resolve()
    report = collect(root, log_lines=log_lines)
    path = output if output is not None else root / ".repropack" / "reports" / f"{report.run_id}.html"
    path = path if path.is_absolute() else Path.cwd() / path
    report.link_base = path.parent
    _write_atomic(path, render_html(report))
    if as_json:
        echo_json({**to_record(report), "html": str(path)})
        return
    failed = report.count("failed")
    click.echo(f"report of run {report.run_id} ({report.status}, {len(report.instances)} instance(s)"
               + (f", {failed} failed" if failed else "") + f"): {path}")


def _write_atomic(path: Path, text: str) -> None:
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
