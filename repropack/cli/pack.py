"""``repropack pack``: write a publication archive of the project."""

from __future__ import annotations

from pathlib import Path

import click

from repropack.cli._options import echo_json, json_output, project_dir


@click.command("pack")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="The archive to write (default: NAME-VERSION.tar.zst in the current folder).")
@click.option("--with-images", is_flag=True, help="Bundle the last build's docker-save archive and SIF.")
@click.option("--with-inputs", is_flag=True, help="Bundle the steps' input files and [data] files.")
@click.option("--with-outputs", is_flag=True, help="Bundle the outputs themselves (their digests always are).")
@click.option("--sign", "sign_key", type=click.Path(dir_okay=False, path_type=Path),
              help="Sign the index with this SSH private key (ssh-keygen -Y sign, namespace repropack).")
@click.option("--threads", type=click.IntRange(1, 64), help="zstd worker threads (the bytes do not depend on it).")
@project_dir
@json_output
def command(output, with_images, with_inputs, with_outputs, sign_key, threads, project_dir, as_json):
    """Pack the manifest, locks, workflow files, every locked package, the last run's records,
    provenance and output digests (and, when asked, images, inputs and outputs) into one
    deterministic .tar.zst file that `repropack verify`, `unpack` and `rerun` read.
    """
    from repropack.archive.pack import PackOptions, default_name, pack
    from repropack.cli._archive import describe_parts
    from repropack.cli._bytes import byte_progress
    from repropack.cli._text import say
    from repropack.human import fmt_bytes
    from repropack.manifest.loader import load_manifest

    root = project_dir.resolve()
    if output is None:
        output = Path.cwd() / default_name(load_manifest(root))
    options = PackOptions(with_images, with_inputs, with_outputs, sign_key, threads)
    with byte_progress("packing", quiet=as_json) as progress:
        packed = pack(root, output, options, progress=progress, on_total=progress.total)
    if as_json:
        echo_json({"archive": str(packed.path), "size": packed.size, "parts": packed.index["parts"],
                   "signed": sign_key is not None, "warnings": packed.warnings})
        return
    for warning in packed.warnings:
        say(f"warning: {warning}", err=True)
    say(f"wrote {packed.path} ({fmt_bytes(packed.size)} from {fmt_bytes(progress.known or 0)})", err=True)
    for line in describe_parts(packed.index):
        say(line, err=True)
    say("signed with " + str(sign_key) if sign_key else "unsigned (pass --sign KEY to sign the index)", err=True)
