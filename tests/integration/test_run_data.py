"""[data]: fetched (file://, http) and verified before any step reads it."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest
from runhelp import repropack, write_project

PAYLOAD = b"alpha beta gamma\n" * 100
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def _project(root, url, sha=SHA):
    return write_project(root, f"""
        [project]
        name = "p"
        [data.words]
        url = "{url}"
        sha256 = "{sha}"
        path = "data/words.txt"
        [[steps]]
        name = "count"
        run = "wc -w < {{inputs}} > {{outputs}}"
        inputs = ["data/words.txt"]
        outputs = ["out/n"]
    """)


def test_file_url_is_fetched_verified_and_then_reused(tmp_path):
    source = tmp_path / "words.txt"
    source.write_bytes(PAYLOAD)
    root = _project(tmp_path / "p", source.as_uri())
    repropack(root, "run", check=True)
    assert (root / "data/words.txt").read_bytes() == PAYLOAD
    assert (root / "out/n").read_text().strip() == "300"
    source.unlink()  # present and verified: not fetched again
    done = repropack(root, "run", "--json", check=True)
    assert '"skipped": 1' in done.stdout


def test_wrong_digest_is_refused_before_any_step_and_nothing_is_left(tmp_path):
    source = tmp_path / "words.txt"
    source.write_bytes(PAYLOAD)
    root = _project(tmp_path / "p", source.as_uri(), sha="0" * 64)
    done = repropack(root, "run")
    assert done.returncode == 1
    assert f"has sha256 {SHA}, expected {'0' * 64}" in done.stderr
    assert not (root / "data/words.txt").exists()
    assert not list((root / "data").glob(".*part*"))
    assert not (root / "out").exists()


@pytest.fixture
def http_server(tmp_path):
    (tmp_path / "srv").mkdir()
    (tmp_path / "srv" / "words.txt").write_bytes(PAYLOAD)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(tmp_path / "srv"), **kw)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_http_download_and_credentials_never_shown(tmp_path, http_server, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    root = _project(tmp_path / "p", f"{http_server}/words.txt")
    repropack(root, "run", check=True)
    assert (root / "data/words.txt").read_bytes() == PAYLOAD
    secret_url = http_server.replace("http://", "http://user:s3cret@") + "/missing.txt"
    other = _project(tmp_path / "q", secret_url)
    done = repropack(other, "run")
    assert done.returncode == 1
    assert "HTTP 404" in done.stderr
    assert "s3cret" not in done.stderr
