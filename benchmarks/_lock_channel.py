"""A generated conda channel for benchmarks/lock.py: N packages, three versions each, with dependencies.

Built with examples/conda-local/make_channel.py (real ``.conda`` and ``.tar.bz2`` packages,
indexed by rattler's indexer). Package ``bpNNN`` depends on three earlier packages with
mixed constraints (``>=1``, ``<2``, ``>=1.1``, ``>=1.0,<3``), so the solver has to pick
older versions where a ``<2`` applies. Built in two passes: first tiny packages, a solve
to learn which records the specs select, then those records get a random payload (about
``megabytes`` in all, incompressible) so fetch and env create move a known volume while the
unselected versions stay small. Same arguments, same bytes.

:class:`Server` serves it over HTTP on 127.0.0.1 and :func:`urllib_fetch` is the plain
sequential download the fetch figures are compared with.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import random
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHANNEL_NAME = "lockbench"
VERSIONS = ("1.0.0", "1.1.0", "2.0.0")
CONSTRAINTS = (">=1", "<2", ">=1.1", ">=1.0,<3")


def _make_channel_module():
    if "make_channel" in sys.modules:
        return sys.modules["make_channel"]
    spec = importlib.util.spec_from_file_location("make_channel", REPO / "examples" / "conda-local" / "make_channel.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_channel"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def specs_for(count: int) -> list[str]:
    """The environment's specs: the ten newest package names (each pulls in a tree of earlier ones)."""
    return [f"bp{i:03d}" for i in range(max(0, count - 10), count)]


def _packages(count: int, payload: dict[tuple[str, str], int]) -> list:
    mc = _make_channel_module()
    rng = random.Random(42)
    out = []
    for i in range(count):
        name = f"bp{i:03d}"
        subdir = "linux-64" if i % 3 == 0 else "noarch"
        for version in VERSIONS:
            depends = [f"bp{j:03d} {rng.choice(CONSTRAINTS)}" for j in sorted(rng.sample(range(i), min(i, 3)))]
            files = [mc.PackageFile(f"share/{name}/version.txt", f"{name} {version}\n".encode())]
            size = payload.get((name, version), 0)
            if size:
                data = random.Random(f"{name}-{version}").randbytes(size)
                files.append(mc.PackageFile(f"share/{name}/payload.bin", data))
            out.append(mc.Package(name=name, version=version, subdir=subdir, depends=depends, files=files,
                                  fmt=".conda" if i % 2 else ".tar.bz2"))
    return out


def solve_records(channel: Path, specs: list[str]) -> list:
    import rattler

    return asyncio.run(rattler.solve(sources=[channel.as_uri()], specs=specs, platforms=["linux-64", "noarch"]))


def build(channel: Path, count: int, megabytes: float) -> tuple[list[str], int]:
    """Write and index the channel; returns (specs, number of records the specs select)."""
    mc = _make_channel_module()
    specs = specs_for(count)
    mc.build_channel(channel, _packages(count, {}), subdirs=["linux-64"])
    chosen = {(r.name.normalized, str(r.version)) for r in solve_records(channel, specs)}
    each = int(megabytes * 1e6 / max(1, len(chosen)))
    mc.build_channel(channel, _packages(count, {key: each for key in chosen}), subdirs=["linux-64"])
    again = {(r.name.normalized, str(r.version)) for r in solve_records(channel, specs)}
    if again != chosen:  # the payload changes no metadata, so the solution must not move
        raise RuntimeError("the benchmark channel's solution changed between passes")
    return specs, len(chosen)


SERVER_SCRIPT = """\
import functools, http.server, sys
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
    def copyfile(self, source, outputfile):  # sendfile(2): the server is not what is measured
        self.wfile.flush()
        self.connection.sendfile(source)
class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128  # the default listen backlog of 5 drops parallel SYNs: 1 s retransmits
httpd = Server(("127.0.0.1", 0), functools.partial(Quiet, directory=sys.argv[1]))
print(httpd.server_address[1], flush=True)
httpd.serve_forever()
"""


class Server:
    """http.server (a thread per connection) in its own process: no side shares a GIL with it."""

    def __init__(self, root: Path):
        self.root = root

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER_SCRIPT, str(self.root)], stdout=subprocess.PIPE,
                                     text=True)
        self.url = f"http://127.0.0.1:{int(self.proc.stdout.readline())}"
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait()


def urllib_fetch(urls: list[tuple[str, str, str]], dest: Path) -> None:
    """Download, sha256 and write each file in turn: the peer of `repropack fetch`."""
    import urllib.request

    dest.mkdir(parents=True)
    for url, sha256, filename in urls:
        digest = hashlib.sha256()
        with urllib.request.urlopen(url) as response, open(dest / filename, "wb") as out:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            raise SystemExit(f"{url}: sha256 mismatch")
