"""Alerts end to end: real runs, a local HTTP receiver for the webhooks, a local SMTP receiver for e-mail.

The slow instance waits for a file the receiver writes when the anomaly alert arrives, so the test
depends on no speed of the machine: the run can only end once the alert was sent.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from runhelp import repropack, write_project


class Receiver:
    """An incoming-webhook endpoint on 127.0.0.1: keeps every JSON body; ``on_alert`` sees each."""

    def __init__(self, on_alert=None):
        self.bodies: list[dict] = []
        self.on_alert = on_alert or (lambda body: None)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.bodies.append(body)
                owner.on_alert(body)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/s3cretHookPath"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def kinds(self) -> list[str]:
        return [b["repropack"]["kind"] for b in self.bodies]


@pytest.fixture
def silent_receiver():
    """A webhook address that takes the connection and never answers (a hung receiver)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)  # connections wait in the backlog: never accepted, never answered
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    finally:
        sock.close()


def test_an_instance_past_3x_its_median_triggers_exactly_one_anomaly(tmp_path):
    release = tmp_path / "release"
    with Receiver(on_alert=lambda body: release.write_text("go")) as receiver:
        root = write_project(tmp_path / "p", f"""
            [project]
            name = "p"
            [alerts]
            webhooks = ["{receiver.url}"]
            on = ["anomaly"]
            [[steps]]
            name = "work"
            foreach = {{ n = [1, 2, 3, 4, 5] }}
            run = "if [ {{n}} = 5 ]; then while [ ! -e {release} ]; do sleep 0.1; done; else sleep 1; fi; echo {{n}} > {{outputs}}"
            outputs = ["out/{{n}}.txt"]
        """)
        done = repropack(root, "run", "-j", "2")
    assert done.returncode == 0, done.stderr
    assert receiver.kinds() == ["anomaly"], receiver.bodies
    alert = receiver.bodies[0]
    fields = alert["repropack"]
    assert (fields["instance"], fields["step"], fields["cause"], fields["project"]) == ("work[n=5]", "work", "slow", "p")
    assert fields["run"] in alert["text"] and "work[n=5]" in alert["text"] and "3× its step's median" in alert["text"]
    assert fields["elapsed"] > 3 * fields["median"]


SECRET = "tok-5up3r-s3cret-v4lue"


def test_failure_and_end_alerts_name_the_cause_and_carry_no_secret(tmp_path, silent_receiver):
    with Receiver() as receiver:
        root = write_project(tmp_path / "p", f"""
            [project]
            name = "p"
            [params]
            api_token = "{SECRET}"
            [alerts]
            webhooks = ["{receiver.url}", "{silent_receiver}"]
            timeout = 1
            [[steps]]
            name = "fill"
            foreach = {{ n = [1, 2] }}
            run = "echo using {{params.api_token}} - No space left on device >&2; exit 1"
            outputs = ["out/{{n}}.txt"]
            [[steps]]
            name = "fine"
            run = "echo ok > {{outputs}}"
            outputs = ["out/fine.txt"]
        """)
        done = repropack(root, "run", "--keep-going", "-j", "1")
    assert done.returncode == 1
    kinds = receiver.kinds()
    assert sorted(kinds) == ["anomaly", "end", "failure", "failure"], receiver.bodies  # anomaly: the failure rate
    failures = [b for b in receiver.bodies if b["repropack"]["kind"] == "failure"]
    assert {b["repropack"]["instance"] for b in failures} == {"fill[n=1]", "fill[n=2]"}
    for body in failures:
        assert body["repropack"]["cause"] == "disk full" and body["repropack"]["step"] == "fill"
        assert "disk full" in body["text"] and body["repropack"]["run"] in body["text"]
    end = next(b for b in receiver.bodies if b["repropack"]["kind"] == "end")
    assert end["repropack"]["status"] == "failed" and end["repropack"]["counts"] == {"done": 1, "failed": 2}
    rate = next(b for b in receiver.bodies if b["repropack"]["kind"] == "anomaly")
    assert rate["repropack"]["cause"] == "failure-rate"
    assert SECRET not in json.dumps(receiver.bodies)
    # the hung receiver: the run ended anyway, its failure is logged once, its address only by host
    assert done.stderr.count("warning: alerts: webhook http://127.0.0.1:") == 1
    assert "no answer within 1 s" in done.stderr and "s3cretHookPath" not in done.stderr


def test_a_memory_anomaly_names_the_request(tmp_path):
    with Receiver() as receiver:
        root = write_project(tmp_path / "p", f"""
            [project]
            name = "p"
            [alerts]
            webhooks = ["{receiver.url}"]
            on = ["anomaly"]
            memory-fraction = 0.0
            [[steps]]
            name = "hold"
            run = "python3 -c 'x = bytearray(30 << 20); print(len(x))' > {{outputs}}"
            outputs = ["out/x.txt"]
            [steps.resources]
            memory = "200MiB"
        """)
        done = repropack(root, "run")
    assert done.returncode == 0, done.stderr
    peaks = [b for b in receiver.bodies if b["repropack"].get("cause") == "memory"]
    if not peaks:  # the backend measures no peak memory here (docs/runner.md): then nothing to alert on
        pytest.skip("no peak memory measured on this machine")
    assert len(peaks) == 1 and peaks[0]["repropack"]["requested"] == 200 << 20
    assert "of the 200 MiB it asked for" in peaks[0]["text"]


class _SMTP(socketserver.StreamRequestHandler):
    """Just enough SMTP to take one message (EHLO/HELO, MAIL, RCPT, DATA, QUIT)."""

    messages: list[str] = []

    def handle(self):
        self.wfile.write(b"220 test ESMTP\r\n")
        while line := self.rfile.readline():
            verb = line.split(b" ")[0].strip().upper()
            if verb == b"DATA":
                self.wfile.write(b"354 go on\r\n")
                lines = []
                while (data := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(data.decode())
                type(self).messages.append("".join(lines))
                self.wfile.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


def test_e_mail_alert_through_a_local_smtp_host(tmp_path):
    _SMTP.messages = []
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTP)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        root = write_project(tmp_path / "p", f"""
            [project]
            name = "p"
            [alerts]
            email = ["lab@example.org"]
            smtp = "127.0.0.1:{server.server_address[1]}"
            from = "runs@example.org"
            on = ["end"]
            [[steps]]
            name = "tool"
            run = "not-a-command-here"
            outputs = ["out/y"]
        """)
        done = repropack(root, "run")
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 1
    assert len(_SMTP.messages) == 1, done.stderr
    mail = _SMTP.messages[0]
    assert "From: runs@example.org" in mail and "To: lab@example.org" in mail
    assert "Subject: repropack run " in mail and "ended failed: 1 failed" in mail


def test_alerts_in_a_profile_replace_the_manifests(tmp_path):
    with Receiver() as first, Receiver() as second:
        root = write_project(tmp_path / "p", f"""
            [project]
            name = "p"
            [alerts]
            webhooks = ["{first.url}"]
            on = ["end"]
            [profiles.loud]
            alerts = {{ webhooks = ["{second.url}"], on = ["end"] }}
            [[steps]]
            name = "a"
            run = "echo 1 > {{outputs}}"
            outputs = ["out/a"]
        """)
        repropack(root, "run", "--profile", "loud", check=True)
    assert first.kinds() == [] and second.kinds() == ["end"]
    assert Path(root / "out/a").exists()


def test_metrics_on_a_taken_port_is_refused_before_anything_runs(tmp_path, silent_receiver):
    port = silent_receiver.rsplit(":", 1)[1].split("/")[0]  # a port something already listens on
    root = write_project(tmp_path / "p", """
        [project]
        name = "p"
        [[steps]]
        name = "a"
        run = "echo 1 > {outputs}"
        outputs = ["out/a"]
    """)
    done = repropack(root, "run", "--metrics", f"127.0.0.1:{port}")
    assert done.returncode == 2
    assert f"--metrics 127.0.0.1:{port}: cannot listen there" in done.stderr
    assert not (root / "out/a").exists()
    bad = repropack(root, "run", "--metrics", "9464")
    assert bad.returncode == 2 and "is not HOST:PORT" in bad.stderr
