import http.server
import json
import threading

import pytest

from repropack.errors import LockError
from repropack.lock import base_image
from repropack.lock.base_image import parse_reference, registry_digest, resolve_base

DIGEST = "sha256:" + "d" * 64


def test_parse_reference_defaults():
    ref = parse_reference("python:3.11-slim")
    assert (ref.registry, ref.repository, ref.tag) == ("registry-1.docker.io", "library/python", "3.11-slim")
    ref = parse_reference("127.0.0.1:5000/team/base")
    assert (ref.registry, ref.repository, ref.tag, ref.api_base) == (
        "127.0.0.1:5000", "team/base", "latest", "http://127.0.0.1:5000")
    ref = parse_reference("ghcr.io/o/img:1@" + DIGEST)
    assert ref.digest == DIGEST and ref.api_base == "https://ghcr.io"
    with pytest.raises(LockError):
        parse_reference("python@sha256:short")


@pytest.fixture
def fake_registry():
    """A registry that demands an anonymous bearer token, as Docker Hub does."""
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path.startswith("/token"):
                body = json.dumps({"token": "T0K"}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_response(404)
            self.end_headers()

        def do_HEAD(self):
            seen.append((self.path, self.headers.get("Authorization"), self.headers.get("Accept")))
            if self.headers.get("Authorization") != "Bearer T0K":
                port = self.server.server_address[1]
                self.send_response(401)
                self.send_header("WWW-Authenticate",
                                 f'Bearer realm="http://127.0.0.1:{port}/token",service="fake"')
                self.end_headers()
                return
            if self.path != "/v2/team/base/manifests/1.0":
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Docker-Content-Digest", DIGEST)
            self.end_headers()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1], seen
    httpd.shutdown()
    httpd.server_close()


def test_registry_digest_with_token_auth(fake_registry):
    port, seen = fake_registry
    assert registry_digest(f"127.0.0.1:{port}/team/base:1.0") == DIGEST
    assert seen[0][1] is None and seen[-1][1] == "Bearer T0K"
    assert "manifest.list.v2+json" in seen[-1][2]  # asks for the multi-platform index digest


def test_resolve_base_from_registry(fake_registry):
    port, _ = fake_registry
    pin, warnings = resolve_base(f"127.0.0.1:{port}/team/base:1.0")
    assert (pin.source, pin.digest, pin.digest_kind, warnings) == ("registry", DIGEST, "manifest", [])


def test_unresolvable_base_is_unpinned_with_a_warning(fake_registry, monkeypatch):
    port, _ = fake_registry
    monkeypatch.delenv(base_image.OVERRIDE_ENV, raising=False)
    pin, warnings = resolve_base(f"127.0.0.1:{port}/team/missing:9")
    assert pin.source == "unpinned" and pin.digest is None
    assert len(warnings) == 1 and "--base-override" in warnings[0] and "HTTP 404" in warnings[0]


def test_override_of_a_missing_local_image_is_an_error(monkeypatch):
    monkeypatch.setenv(base_image.OVERRIDE_ENV, "repropack-test/no-such-image:never")
    with pytest.raises(LockError, match="no local image repropack-test/no-such-image:never"):
        resolve_base("python:3.11-slim")


def test_no_base_is_nothing_to_pin():
    assert resolve_base(None) == (base_image.BasePin(reference=None, source="unpinned"), [])
