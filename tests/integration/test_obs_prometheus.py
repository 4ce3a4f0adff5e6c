"""A real Prometheus scrapes `repropack run --metrics` on a workflow of slow steps; its API answers for them.

The server is Debian's prometheus, started on 127.0.0.1 by scripts/engines.d/prometheus.sh with a
config naming the run's metrics address. The steps wait for a file the test writes once Prometheus
has stored a sample of them running, so nothing depends on how fast the machine is.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from runhelp import start, write_project

HELPER = Path(__file__).resolve().parents[2] / "scripts" / "engines.d" / "prometheus.sh"
pytestmark = pytest.mark.prometheus


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def prometheus(tmp_path):
    """(a function asking the server's query API, the metrics address it scrapes)."""
    target = f"127.0.0.1:{_free_port()}"
    where = tmp_path / "prom"
    done = subprocess.run(["bash", str(HELPER), "start", str(where), target], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    port = int(done.stdout.split()[0])

    def query(expr: str) -> list[dict]:
        url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]["result"]

    try:
        yield query, target
    finally:
        subprocess.run(["bash", str(HELPER), "stop", str(where)], timeout=60)


def _until(probe, what: str, within: float = 120.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"no {what} within {within:g} s")


def _dashboard_queries_answer(query) -> None:
    """Every query of docs/grafana-dashboard.json is PromQL this server runs, over these families only."""
    import re

    dashboard = json.loads((HELPER.parents[2] / "docs" / "grafana-dashboard.json").read_text())
    families = {"repropack_instances", "repropack_instance_duration_seconds_bucket", "repropack_attempts_total",
                "repropack_instance_peak_memory_bytes_bucket", "repropack_run_info"}
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 10
    for expr in exprs:
        assert set(re.findall(r"repropack_\w+", expr)) <= families, expr
        query(expr.replace("$instance", ".*"))  # raises unless the server accepts it
    assert query('sum(repropack_instances{instance=~".*",state="done"})')


def test_prometheus_scrapes_a_running_workflow(tmp_path, prometheus):
    query, target = prometheus
    release = tmp_path / "release"
    root = write_project(tmp_path / "p", f"""
        [project]
        name = "p"
        [[steps]]
        name = "slow"
        foreach = {{ n = [1, 2, 3] }}
        run = "while [ ! -e {release} ]; do sleep 0.2; done; echo {{n}} > {{outputs}}"
        outputs = ["out/{{n}}.txt"]
        [[steps]]
        name = "gather"
        run = "while [ ! -e {release}2 ]; do sleep 0.2; done; cat {{inputs}} > {{outputs}}"
        inputs = ["out/{{n}}.txt"]
        outputs = ["all.txt"]
    """)
    proc = start(root, "run", "-j", "2", "--metrics", target)
    try:
        running = _until(lambda: query('repropack_instances{step="slow",state="running"} > 0'), "running sample")
        assert running[0]["metric"]["job"] == "repropack"
        assert int(float(running[0]["value"][1])) == 2
        queued = query('repropack_instances{state="queued"}')
        assert {r["metric"]["step"]: int(float(r["value"][1])) for r in queued} == {"slow": 1, "gather": 1}
        info = query("repropack_run_info")
        assert info[0]["metric"]["backend"] == "local" and info[0]["metric"]["profile"] == "local"
        release.write_text("go")  # the slow steps end; gather then waits for release2
        _until(lambda: query('repropack_instances{step="gather",state="running"} == 1'), "gather running")
        done = query('repropack_instances{step="slow",state="done"}')
        assert int(float(done[0]["value"][1])) == 3
        attempts = query('repropack_attempts_total{step="slow"}')
        assert [(r["metric"]["failure"], int(float(r["value"][1]))) for r in attempts] == [("none", 3)]
        durations = query('repropack_instance_duration_seconds_count{step="slow"}')
        assert int(float(durations[0]["value"][1])) == 3
        assert query('repropack_instance_peak_memory_bytes_count{step="slow"}')
        _dashboard_queries_answer(query)
    finally:
        release.write_text("go")
        Path(f"{release}2").write_text("go")
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert f"metrics: http://{target}/metrics" in err


@pytest.fixture
def pushgateway(tmp_path):
    where = tmp_path / "pushgateway"
    done = subprocess.run(["bash", str(HELPER), "pushgateway", str(where)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    try:
        yield f"http://127.0.0.1:{int(done.stdout.split()[0])}"
    finally:
        subprocess.run(["bash", str(HELPER), "stop", str(where)], timeout=60)


def test_final_figures_reach_the_pushgateway(tmp_path, pushgateway):
    from runhelp import repropack

    root = write_project(tmp_path / "p", """
        [project]
        name = "p"
        [[steps]]
        name = "make"
        foreach = { n = [1, 2] }
        run = "echo {n} > {outputs}"
        outputs = ["out/{n}.txt"]
        [[steps]]
        name = "broken"
        run = "echo 'No space left on device' >&2; exit 1"
        outputs = ["out/never"]
    """)
    done = repropack(root, "run", "--keep-going", "--pushgateway", pushgateway)
    assert done.returncode == 1
    assert "not pushed" not in done.stderr
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{pushgateway}/metrics", timeout=10) as response:
        text = response.read().decode()
    lines = [line for line in text.splitlines() if line.startswith("repropack_")]
    assert any(line.startswith('repropack_instances{instance="",job="repropack"') and 'state="done",step="make"'
               in line and line.endswith(" 2") for line in lines), lines
    assert any('failure="exit"' in line and 'step="broken"' in line and line.endswith(" 1")
               for line in lines if line.startswith("repropack_attempts_total")), lines
    run_id = json.loads(repropack(root, "status", "--json", check=True).stdout)["run"]["run"]
    assert any(f'run="{run_id}"' in line for line in lines if line.startswith("repropack_run_info"))


def test_an_unreachable_pushgateway_is_a_warning(tmp_path):
    from runhelp import repropack

    root = write_project(tmp_path / "p", """
        [project]
        name = "p"
        [[steps]]
        name = "make"
        run = "echo 1 > {outputs}"
        outputs = ["out/1.txt"]
    """)
    done = repropack(root, "run", "--pushgateway", f"http://127.0.0.1:{_free_port()}/secret-path")
    assert done.returncode == 0, done.stderr
    assert "warning: --pushgateway http://127.0.0.1:" in done.stderr and "the final figures were not pushed" in done.stderr
    assert "secret-path" not in done.stderr
