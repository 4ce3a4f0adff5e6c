"""`repropack env`: create, run a command in, or open a shell in a locked environment."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import click

from repropack.cli._complete import environment_names
from repropack.cli._options import echo_json, frozen, json_output, offline, project_dir, verbosity


@click.group("env")
def command() -> None:
    """Create a locked environment on this host (from the cache only) and use it."""


def _pick(manifest, name: str | None) -> str:
    from repropack.errors import UsageError

    envs = sorted(manifest.environments)
    if name:
        if name not in manifest.environments:
            raise UsageError(f"no environment named {name!r} (defined: {', '.join(envs) or 'none'})")
        return name
    if "default" in manifest.environments:
        return "default"
    if len(envs) == 1:
        return envs[0]
    raise UsageError(f"name the environment: {', '.join(envs)}" if envs else "the manifest defines no environment")


def _prefix(project_dir: Path, name: str | None, flags: dict) -> tuple[str, Path, bool]:
    """The environment's host prefix, fetched and created as the flags allow (never relocked)."""
    from repropack.cli._fetching import fetch_reporter
    from repropack.lock import Provision, ensure_fresh, provide_host_environment
    from repropack.manifest import load_manifest

    manifest = load_manifest(project_dir)
    env_name = _pick(manifest, name)
    lockset = ensure_fresh(manifest)
    reporter = fetch_reporter(as_json=flags.get("as_json", False), quiet=flags["quiet"], verbose=flags["verbose"])
    provision = Provision.from_flags(offline=flags["offline"], frozen=flags["frozen"], reporter=reporter)
    try:
        prefix, created = provide_host_environment(lockset, env_name, provision, manifest=manifest)
    finally:
        reporter.close()
    return env_name, prefix, created


def _provisioning(command):
    """--offline, --frozen, -q and -v: how an env command may get what the lock names."""
    return offline(frozen(verbosity(command)))


@command.command("create")
@click.argument("environment", required=False, shell_complete=environment_names)
@project_dir
@json_output
@_provisioning
def create(environment: str | None, project_dir: Path, as_json: bool, **flags) -> None:
    """Install ENV (default: `default`) under .repropack/envs/, fetching what the cache lacks; reused while the lock is the same."""
    name, prefix, created = _prefix(project_dir, environment, {**flags, "as_json": as_json})
    if as_json:
        echo_json({"environment": name, "prefix": str(prefix), "created": created})
    elif not flags["quiet"]:
        click.echo(f"{'created' if created else 'reused'} environment {name}: {prefix}", err=True)


class _DashCommand(click.Command):
    """Keeps everything after `--` as the command, so options of the command are not ours."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            ctx.meta["repropack.command"] = args[cut + 1:]
            args = args[:cut]
        return super().parse_args(ctx, args)


@command.command("run", cls=_DashCommand)
@click.argument("environment", required=False, shell_complete=environment_names)
@project_dir
@_provisioning
@click.pass_context
def run(ctx: click.Context, environment: str | None, project_dir: Path, **flags) -> None:
    """Run a command inside ENV: repropack env run [ENV] -- CMD [ARGS]..."""
    from repropack.errors import UsageError
    from repropack.lock.materializer import activation_env

    argv = ctx.meta.get("repropack.command")
    if not argv:
        raise UsageError("give the command after `--`: repropack env run [ENV] -- CMD [ARGS]...")
    _, prefix, _ = _prefix(project_dir, environment, flags)
    ctx.exit(_call(argv, activation_env(prefix)))


@command.command("shell")
@click.argument("environment", required=False, shell_complete=environment_names)
@project_dir
@_provisioning
@click.pass_context
def shell(ctx: click.Context, environment: str | None, project_dir: Path, **flags) -> None:
    """Open $SHELL inside ENV (exit the shell to leave)."""
    from repropack.lock.materializer import activation_env

    _, prefix, _ = _prefix(project_dir, environment, flags)
    ctx.exit(_call([os.environ.get("SHELL") or "/bin/sh"], activation_env(prefix)))


def _call(argv: list[str], env: dict[str, str]) -> int:
    from repropack.errors import RunError

    try:
        code = subprocess.call(argv, env=env)
    except FileNotFoundError:
        raise RunError(f"{argv[0]}: command not found in the environment or on PATH") from None
    # killed by signal N: the shell's convention, 128 + N (137 for SIGKILL); a bare -N would exit 256 - N
    return 128 - code if code < 0 else code
