"""Helpers for the lock/fetch/env tests: local conda channels, manifests, a local HTTP server.

Channels are real conda packages built by examples/conda-local/make_channel.py and indexed
with rattler's indexer; nothing here needs conda or any public channel.
"""

from __future__ import annotations

import http.server
import importlib.util
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("make_channel", REPO / "examples" / "conda-local" / "make_channel.py")
make_channel = importlib.util.module_from_spec(_spec)
sys.modules["make_channel"] = make_channel  # dataclasses look their module up while the class is made
_spec.loader.exec_module(make_channel)

Package = make_channel.Package
PackageFile = make_channel.PackageFile


def data_pkg(name: str, version: str, depends=(), subdir: str = "noarch", fmt: str = ".tar.bz2", build="0"):
    return Package(name=name, version=version, build=build, subdir=subdir, depends=list(depends), fmt=fmt,
                   files=[PackageFile(f"share/{name}/{subdir}-{version}.txt", f"{name} {version}\n".encode())])


def example_channel(path: Path, extra=(), subdirs=("linux-64",)) -> Path:
    return make_channel.build_channel(path, [*make_channel.example_packages(), *extra], subdirs=list(subdirs))


def manifest(root: Path, environments: Mapping[str, Mapping], mirrors: Mapping[str, str] | None = None,
             base: str | None = None):
    """A Manifest built directly (the lock only reads environments, mirrors and image.base)."""
    from repropack.manifest.model import Environment, Image, Manifest, Project

    root.mkdir(parents=True, exist_ok=True)
    (root / "repropack.toml").touch()
    envs = {name: Environment(name=name, **dict(fields)) for name, fields in environments.items()}
    return Manifest(path=root / "repropack.toml", project=Project(name="t"), environments=MappingProxyType(envs),
                    mirrors=MappingProxyType(dict(mirrors or {})), image=Image(base=base))


@dataclass
class Server:
    """A local HTTP server over a directory; ``cut`` names files it sends half of, then drops."""

    root: Path
    cut: set[str] = field(default_factory=set)
    hits: dict[str, int] = field(default_factory=dict)
    httpd: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> Server:
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(server.root), **kwargs)

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                server.hits[name] = server.hits.get(name, 0) + 1
                if name in server.cut:
                    data = (server.root / self.path.lstrip("/")).read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
