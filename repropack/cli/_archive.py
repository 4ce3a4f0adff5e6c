"""Options the archive commands share (verify ARCHIVE, unpack, rerun)."""

from __future__ import annotations

from pathlib import Path

import click

allowed_signers = click.option(
    "--allowed-signers", type=click.Path(dir_okay=False, path_type=Path),
    help="An ssh-keygen allowed-signers file: the archive must be signed by a key listed there.")


def limits_options(command):
    """--max-size, --max-members, --max-ratio: the caps that stop decompression bombs."""
    from repropack.archive.safety import DEFAULT_MAX_BYTES, DEFAULT_MAX_MEMBERS, DEFAULT_MAX_RATIO

    command = click.option("--max-ratio", type=float, default=DEFAULT_MAX_RATIO, show_default=True,
                           help="Refuse an archive that decompresses to more than this many times its size.")(command)
    command = click.option("--max-members", type=int, default=DEFAULT_MAX_MEMBERS, show_default=True,
                           help="Refuse an archive with more members.")(command)
    return click.option("--max-size", type=int, default=DEFAULT_MAX_BYTES, show_default=True,
                        help="Refuse an archive holding more bytes of content.")(command)


def limits(max_size: int, max_members: int, max_ratio: float):
    from repropack.archive.safety import Limits

    return Limits(max_bytes=max_size, max_members=max_members, max_ratio=max_ratio)


def describe_parts(index: dict) -> list[str]:
    from repropack.human import fmt_bytes

    parts = index.get("parts") or {}
    return [f"  {name:<10} {info.get('files', 0):>6} files  {fmt_bytes(info.get('bytes', 0)):>10}"
            for name, info in sorted(parts.items())]
