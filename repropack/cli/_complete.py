"""Shell completion of what a project names: steps, profiles, environments, instances.

click asks these while the user presses Tab (``_REPROPACK_COMPLETE=bash_complete``); they read the
manifest of the folder given by ``-C`` (or the current one) and answer nothing on any error, so a
broken manifest never breaks the shell. See docs/cli.md for enabling it.
"""

from __future__ import annotations

from pathlib import Path

import click
from click.shell_completion import CompletionItem


def _manifest(ctx: click.Context):
    from repropack.manifest import load_manifest

    root = Path(ctx.params.get("project_dir") or ".")
    try:
        return load_manifest(root)
    except Exception:  # completion must never fail: an unreadable manifest offers nothing
        return None


def _items(names, incomplete: str, help: str | None = None) -> list[CompletionItem]:
    return [CompletionItem(n, help=help) for n in sorted(set(names)) if n.startswith(incomplete)]


def step_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    manifest = _manifest(ctx)
    return _items((s.name for s in manifest.steps), incomplete) if manifest else []


def profile_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    manifest = _manifest(ctx)
    return _items(manifest.profiles, incomplete) if manifest else []


def environment_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    manifest = _manifest(ctx)
    return _items(manifest.environments, incomplete) if manifest else []


def instance_selectors(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Step names, instance ids and STEP:VALUE, from the manifest's expansion."""
    manifest = _manifest(ctx)
    if manifest is None:
        return []
    try:
        from repropack.manifest.dag import expand

        ids = list(expand(manifest).instances)
    except Exception:  # an expansion error (a bad --param default, ...) offers the step names only
        ids = []
    names = {s.name for s in manifest.steps} | set(ids)
    for iid in ids:
        step, _, rest = iid.partition("[")
        names |= {f"{step}:{kv.partition('=')[2]}" for kv in rest.rstrip("]").split(",") if rest}
    return _items(names, incomplete)
