"""``repropack run``: run the workflow's steps as a parallel DAG, skipping finished work."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from repropack.cli._complete import profile_names, step_names
from repropack.cli._options import echo_json, frozen, json_output, offline, project_dir, verbosity
from repropack.cli._text import safe, say


@click.command("run")
@click.argument("steps", nargs=-1, shell_complete=step_names)
@click.option("--profile", shell_complete=profile_names, help="Profile to run with (backend and runtime); default: `local`.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Run at most N instances (and N cpus) at once.")
@click.option("--resume/--no-resume", default=True, show_default=True, help="Skip instances whose key and outputs match.")
@click.option("--from", "from_", metavar="STEP", shell_complete=step_names, help="Start at STEP (earlier steps are taken as done).")
@click.option("--until", metavar="STEP", shell_complete=step_names, help="Stop after STEP.")
@click.option("--dry-run", is_flag=True, help="Print what would run and why; run nothing.")
@click.option("--keep-going", is_flag=True, help="After a failure, go on with everything that does not depend on it.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Override a [params] value (repeatable).")
@click.option("--rehash", is_flag=True,
              help="Hash every input, source and output again instead of trusting the hash cache's file stamps.")
@click.option("--metrics", "metrics", metavar="HOST:PORT",
              help="Serve Prometheus metrics at http://HOST:PORT/metrics while the run lasts (docs/observability.md).")
@click.option("--pushgateway", metavar="URL", help="Push the run's final metrics to this Prometheus Pushgateway.")
@project_dir
@json_output
@offline
@frozen
@verbosity
def command(steps, profile, jobs, resume, from_, until, dry_run, keep_going, params, rehash, metrics, pushgateway,
            project_dir, as_json, offline, frozen, quiet, verbose):
    """Run STEP... (default: every step), in parallel where the DAG allows.

    What the lock names but this machine lacks is downloaded and installed first (never re-solved);
    --offline installs from the cache only, --frozen installs nothing.
    """
    from repropack.errors import StepFailed, UsageError
    from repropack.manifest import load_manifest
    from repropack.manifest.dag import expand

    manifest = load_manifest(project_dir)
    overrides = _parse_params(params)
    dag = expand(manifest, overrides)
    if steps or from_ or until:
        dag = dag.select(targets=tuple(steps), from_=from_, until=until)
    if dry_run:
        _dry_run(manifest, dag, resume, as_json, profile=profile, rehash=rehash)
        return
    from repropack.cli._progress import RichEvents, make_events
    from repropack.redact import project_redactor
    from repropack.run.runner import Runner, RunOptions

    redact = project_redactor(manifest, overrides)  # knows the --param values: masks them in every line below
    options = RunOptions(profile=profile, jobs=jobs, resume=resume, keep_going=keep_going, offline=offline,
                         rehash=rehash, frozen=frozen, argv=["repropack", "run", *sys.argv[2:]], redactor=redact)
    events = make_events(as_json, quiet=quiet, verbose=verbose)
    runner = Runner(manifest, dag, options, events)
    _prepare(runner, as_json=as_json, quiet=quiet, verbose=verbose)
    with _observation(runner, manifest, dag, profile, metrics, pushgateway, quiet or as_json, redact):
        if isinstance(events, RichEvents):
            with events:
                result = runner.run()
        else:
            result = runner.run()
    for path in result.undeclared[:20]:
        say(f"warning: {path} appeared in the project but no step declares it as an output", err=True)
    if len(result.undeclared) > 20:
        click.echo(f"warning: ... and {len(result.undeclared) - 20} more undeclared files", err=True)
    summary = {s: result.count(s) for s in ("done", "skipped", "failed", "not-run")}
    causes = _causes(manifest, result)
    if as_json:
        shown = {iid: {**c.to_record(), "evidence": redact(c.evidence)} for iid, c in causes.items()}
        echo_json({"run": result.run_id, "status": result.status, "counts": summary, "undeclared": result.undeclared,
                   "instances": {r.id: {"status": r.status, "failure": r.failure, "message": r.message,
                                        "attempts": r.attempts, **({"cause": shown[r.id]} if r.id in shown else {})}
                                 for r in result.results.values()}})
    elif not quiet:
        parts = ", ".join(f"{n} {s}" for s, n in summary.items() if n)
        say(f"run {result.run_id}: {parts or 'nothing to do'}", err=True)
    if result.failed:
        first = result.failed[0]
        for failed in result.failed:
            _print_failure(failed, Path(manifest.root), redact, causes.get(failed.id))
        raise StepFailed(first.id, backend=first.backend or "local", job_id=first.job_id, exit_status=None,
                         failure=first.failure or "failed", log_tail="", run_dir=first.dir)
    if result.status != "ok":
        raise UsageError(f"run ended {result.status}")


def _observation(runner, manifest, dag, profile, metrics, pushgateway, quiet: bool, redact):
    """Metrics, the final push and alerts beside the run: a no-op unless asked for."""
    import contextlib

    from repropack.observe.session import observation_for

    observation = observation_for(runner.run_id, manifest, dag, profile, metrics=metrics, pushgateway=pushgateway,
                                  redact=redact, warn=lambda line: say(f"warning: {line}", err=True))
    if observation is None:
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def announced():
        with observation:
            if observation.address and not quiet:
                host, port = observation.address
                say(f"metrics: http://{host}:{port}/metrics", err=True)
            yield

    return announced()


def _prepare(runner, *, as_json: bool, quiet: bool, verbose: int) -> None:
    """Fetch and create the environments the lock names, with their own progress, before the run's display."""
    from repropack.cli._fetching import fetch_reporter

    reporter = fetch_reporter(as_json=as_json, quiet=quiet, verbose=verbose)
    try:
        created = runner.prepare_environments(reporter)
    finally:
        reporter.close()
    for name, prefix in created:
        if not (quiet or as_json):
            say(f"created environment {name}: {prefix}", err=True)


def _parse_params(pairs) -> dict[str, str]:
    # Unknown keys are refused by the DAG expansion, which suggests the nearest name.
    from repropack.errors import UsageError

    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--param {pair!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _dry_run(manifest, dag, resume: bool, as_json: bool, *, profile: str | None, rehash: bool) -> None:
    from repropack.run.runner import plan_run

    decisions = plan_run(manifest, dag, resume=resume, profile=profile, rehash=rehash)
    to_run = [d for d in decisions if d.run]
    if as_json:
        echo_json({"to_run": [{"id": d.instance_id, "reasons": d.reasons} for d in to_run],
                   "up_to_date": len(decisions) - len(to_run)})
        return
    for d in to_run:
        say(f"run  {d.instance_id}  ({'; '.join(d.reasons)})")
    click.echo(f"{len(to_run)} to run, {len(decisions) - len(to_run)} up to date", err=True)


def _causes(manifest, result) -> dict:
    from repropack.observe.attempts import causes_of_run
    from repropack.observe.causes import table_for

    failed = [(r.id, r.failure, r.dir) for r in result.failed]
    return causes_of_run(Path(manifest.root), result.run_id, failed, table_for(manifest)) if failed else {}


def _print_failure(result, root: Path, redact, cause) -> None:
    from repropack.run.rundir import InstanceDir, tail

    say(f"\nfailed: {safe(result.id, one_line=True)} ({result.failure}: {safe(redact(result.message), one_line=True)}) "
        f"after {result.attempts} attempt(s)", err=True)
    if cause is not None:
        say(f"cause: {safe(redact(cause.line()), one_line=True)}", err=True)
        say(f"fix: {cause.fix}", err=True)
    if result.command:
        say(f"command: {redact(result.command)}", err=True)
    if result.dir is None:
        return
    last = InstanceDir(Path(result.dir)).last_attempt()
    if last is None:
        return
    for name, path in (("stderr", last.stderr), ("stdout", last.stdout)):
        text = tail(path, 15)
        if text:
            say(f"--- {name} (last lines; {path.relative_to(root) if path.is_relative_to(root) else path}) ---", err=True)
            say(redact(text), err=True)
