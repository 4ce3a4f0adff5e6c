"""Command-line entry point.

Each command lives in its own module under ``repropack.cli`` and is imported
only when invoked, so ``repropack --help`` does not pay for docker, rattler or
conda-lock imports. Only :func:`main` turns errors into exit codes.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from repropack import __version__
from repropack.errors import EXIT_CODES, EXIT_INTERRUPTED

# command name -> (module under repropack.cli, one-line help shown by --help)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("init", "Write a repropack.toml (optionally from environment.yml, requirements.txt or pyproject.toml)."),
    "check": ("check", "Validate the manifest and print every problem found."),
    "lock": ("lock", "Pin every package and the base image into repropack.lock and its lock files."),
    "fetch": ("fetch", "Download every locked package into the verified cache."),
    "env": ("env", "Create, run commands in, or open a shell in a locked environment."),
    "build": ("build", "Build a reproducible Docker image and Apptainer SIF from the lock."),
    "run": ("run", "Run the workflow's steps as a parallel DAG with resume."),
    "status": ("status", "Show the state of the last run, step by step."),
    "logs": ("logs", "Show the logs of a step instance."),
    "report": ("report", "Write a self-contained HTML report of the last run."),
    "provenance": ("provenance", "Write the provenance crate (RO-Crate) and SBOMs of a run."),
    "verify": ("verify", "Hash the outputs again and compare with the last run, a checksum list, or check an archive."),
    "pack": ("pack", "Write a publication archive: workflow, locks, packages, records, digests (and images, data)."),
    "rerun": ("rerun", "Rerun a published archive offline and compare every output with its published digest."),
    "unpack": ("unpack", "Extract a publication archive safely (every member checked against its index)."),
    "clean": ("clean", "Remove run directories, caches of finished runs and stale environments."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        if name not in COMMANDS:
            return None
        module = importlib.import_module(f"repropack.cli.{COMMANDS[name][0]}")
        return module.command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Use the static table so --help imports no command module.
        rows = [(name, COMMANDS[name][1]) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def exit_code_table() -> str:
    """The exit codes for --help's epilog (\b keeps click from re-wrapping the rows)."""
    rows = "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES)
    return f"\b\nExit codes:\n{rows}"


@click.group(cls=LazyGroup, epilog=exit_code_table(),
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="repropack")
@click.option("--debug", is_flag=True, envvar="REPROPACK_DEBUG", help="Show full tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Freeze a research workflow's software, build reproducible images and run
    its steps on this machine: on the host, in Docker or in Apptainer, with
    resume, retries and checksums that anyone can check file by file.

    \b
    Typical session:
      repropack init            # write repropack.toml
      repropack lock            # pin every package and the base image
      repropack fetch           # download them into the verified cache
      repropack run             # run the steps; rerun skips finished work
      repropack build           # reproducible Docker image and SIF
      repropack run --profile docker --no-resume   # the same steps again, in the image
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; the only place that maps errors to exit codes."""
    from repropack.errors import ReproError

    debug = "--debug" in (argv if argv is not None else sys.argv[1:]) or os.environ.get("REPROPACK_DEBUG") == "1"
    try:
        # ctx.exit(n) returns n here (standalone_mode=False): `env run` passes its command's status on.
        status = cli.main(args=argv, prog_name="repropack", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return EXIT_INTERRUPTED
    except click.exceptions.Exit as exit_:
        return exit_.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return EXIT_INTERRUPTED
    except ReproError as exc:
        if debug:
            raise
        _print_error(exc)
        return exc.exit_code
    except OSError as exc:  # a file the command needs (disk full, read-only, permission): one line, exit 7
        if debug:
            raise
        from repropack.errors import StorageError

        error = StorageError.from_os(exc, os.getcwd())
        _print_error(error)
        return error.exit_code
    return status if isinstance(status, int) else 0


def _print_error(exc: Exception) -> None:
    from repropack.errors import ManifestErrors
    from repropack.cli._text import say
    from repropack.redact import Redactor, secret_values

    redact = Redactor(secret_values())
    if isinstance(exc, ManifestErrors):
        for error in exc.errors:
            say(f"error: {redact(str(error))}", err=True)
        return
    say(f"error: {redact(str(exc))}", err=True)


def _entry() -> None:
    sys.exit(main())
