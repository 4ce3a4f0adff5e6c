"""Issue 8 defect 7: pipe groups never hang.

A group that cannot run at once is refused before anything runs; a member that ends without
opening its end of a stream fails the group (class ``pipe``) within seconds, naming the member,
and nothing of the group keeps running. Every run here is bounded by a time-out, so a hang is a
failure, not a stuck suite.
"""

from __future__ import annotations

import json
import time

import pytest
from runhelp import last_run_id, processes_with_marker, repropack, write_project
from sentinel import changed, snapshot

BOUND = 40  # seconds; the fixed runner answers in a few, the hang it replaces never did


def _project(tmp_path, produce="seq 1 200000 > {outputs}", consume="wc -l < {inputs} > {outputs}",
             extra="", consume_extra="", head=""):
    return write_project(tmp_path / "p", f"""
        [project]
        name = "p"
        {head}
        [[steps]]
        name = "produce"
        run = "{produce}"
        outputs = [{{ path = "tmp/stream.txt", pipe = true }}]
        {extra}
        [[steps]]
        name = "consume"
        run = "{consume}"
        inputs = ["tmp/stream.txt"]
        outputs = ["results/count.txt"]
        {consume_extra}
    """)


def _run(root, *args):
    started = time.monotonic()
    done = repropack(root, "run", *args, timeout=BOUND)
    return done, time.monotonic() - started


def _no_run_yet(root):
    status = json.loads(repropack(root, "status", "--json", check=True).stdout)
    return status["run"] is None


def _gone(run_id, within=10.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not processes_with_marker(run_id):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("args, head, extra", [
    (("-j", "1"), "", ""),
    ((), "[profiles.local]\ncpus = 1", ""),
    ((), "[profiles.local]\nmax-jobs = 1", ""),
    ((), "[profiles.local]\nmemory = \"1 GB\"", "resources = { memory = \"600 MB\" }"),
])
def test_defect07_pipe_group_that_cannot_run_at_once_is_refused_before_anything_runs(tmp_path, args, head, extra):
    root = _project(tmp_path, head=head, extra=extra,
                    consume_extra=extra)
    done, _ = _run(root, *args)
    assert done.returncode == 5, done.stderr  # EXIT_RESOURCES
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: pipe group produce + consume"), done.stderr
    assert "nothing was run" in error
    assert "at most" in error
    assert _no_run_yet(root)


def test_defect07_pipe_group_fits_with_enough_slots(tmp_path):
    root = _project(tmp_path)
    done, _ = _run(root, "-j", "2")
    assert done.returncode == 0, done.stderr
    assert (root / "results/count.txt").read_text().strip() == "200000"


def _failed(done):
    assert done.returncode == 1, (done.stdout, done.stderr)
    return json.loads(done.stdout)["instances"]


@pytest.mark.parametrize("produce, consume, blamed, other, side", [
    ("seq 1 200000 > {outputs}", "echo never read > {outputs}", "consume", "produce", "input"),
    ("true", "cat {inputs} > {outputs}", "produce", "consume", "output"),
])
def test_defect07_member_that_never_opens_its_stream_fails_the_group(tmp_path, produce, consume, blamed, other, side):
    root = _project(tmp_path, produce=produce, consume=consume)
    done, took = _run(root, "--json")
    instances = _failed(done)
    assert instances[blamed]["failure"] == "pipe"
    assert f"{blamed} exited without opening its {side} tmp/stream.txt" in instances[blamed]["message"]
    assert instances[other]["status"] == "failed"
    assert took < BOUND / 2
    assert _gone(last_run_id(root))
    assert not (root / "results/count.txt").exists()
    assert not (root / "tmp/stream.txt").exists()


def test_defect07_consumer_that_never_opens_a_short_stream_fails_too(tmp_path):
    # the whole stream fits in the FIFO's buffer, so the producer ends happily: still nobody read it
    root = _project(tmp_path, produce="echo short > {outputs}", consume="echo never read > {outputs}")
    instances = _failed(_run(root, "--json")[0])
    assert instances["consume"]["failure"] == "pipe"
    assert "did not open" in instances["consume"]["message"] or "without opening" in instances["consume"]["message"]


def test_defect07_consumer_failing_before_it_opens_ends_the_group(tmp_path):
    root = _project(tmp_path, consume="exit 1")
    instances = _failed(_run(root, "--json")[0])
    assert instances["consume"]["failure"] == "exit"
    assert instances["produce"]["status"] == "failed"
    assert _gone(last_run_id(root))


def test_defect07_producer_failing_before_it_opens_ends_the_group(tmp_path):
    root = _project(tmp_path, produce="exit 4", consume="cat {inputs} > {outputs}")
    instances = _failed(_run(root, "--json")[0])
    assert instances["produce"]["failure"] == "exit"
    assert instances["consume"]["status"] == "failed"
    assert _gone(last_run_id(root))


def test_defect07_a_member_that_never_opens_is_retried_with_its_group(tmp_path):
    root = _project(tmp_path, consume="if [ {attempt} -ge 2 ]; then wc -l < {inputs} > {outputs}; else echo no > {outputs}; fi",
                    extra="retries = 1", consume_extra="retries = 1")
    done, _ = _run(root, "--json")
    assert done.returncode == 0, done.stderr
    assert "retry produce (pipe: consume exited without opening its input tmp/stream.txt)" in done.stderr
    assert (root / "results/count.txt").read_text().strip() == "200000"


def test_defect11_pipe_failure_blames_the_consumer_that_exited_1(tmp_path):
    root = _project(tmp_path, produce="seq 1 1000000 > {outputs}", consume="head -c 10 {inputs} > {outputs}; exit 1")
    for _ in range(3):  # the producer's SIGPIPE and the consumer's exit race: the answer must not
        done, _ = _run(root, "--json")
        instances = _failed(done)
        assert instances["consume"]["failure"] == "exit"
        assert instances["produce"]["failure"] == "cancelled"
        assert instances["produce"]["message"] == "stopped: consume failed"
        assert done.stderr.strip().splitlines()[-1].startswith("error: step consume failed")
        assert done.stderr.index("failed: consume") < done.stderr.index("failed: produce")


@pytest.mark.docker
@pytest.mark.parametrize("produce, consume, blamed", [
    ("seq 1 200000 > {outputs}", "echo never read > {outputs}", "consume"),
    ("true", "cat {inputs} > {outputs}", "produce"),
])
def test_defect07_docker_member_that_never_opens_fails_the_group(tmp_path, base_image, produce, consume, blamed):
    import docker

    root = _project(tmp_path, produce=produce, consume=consume,
                    head=f'[image]\nname = "{base_image}"\n[profiles.docker]\nruntime = "docker"')
    done, took = _run(root, "--profile", "docker", "--json")
    instances = _failed(done)
    assert instances[blamed]["failure"] == "pipe"
    assert f"{blamed} exited without opening" in instances[blamed]["message"]
    assert took < BOUND
    run_id = last_run_id(root)
    client = docker.from_env()
    try:
        assert client.containers.list(all=True, filters={"label": f"repropack.run={run_id}"}) == []
    finally:
        client.close()
    assert _gone(run_id)
    fixed = _project(tmp_path / "ok", head=f'[image]\nname = "{base_image}"\n[profiles.docker]\nruntime = "docker"')
    assert _run(fixed, "--profile", "docker")[0].returncode == 0
    assert (fixed / "results/count.txt").read_text().strip() == "200000"


def test_defect02_pipe_under_a_link_planted_by_an_earlier_step_touches_nothing_outside(tmp_path):
    """The stream's FIFO is made (and removed) by the runner: never through a link leading outside."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "stream.txt").write_text("precious\n")
    root = _project(tmp_path, extra='needs = ["plant"]', head="""
        [[steps]]
        name = "plant"
        run = "ln -sfn ../victim tmp && touch {outputs}"
        outputs = ["planted.txt"]
    """.replace("\n        ", "\n"))
    before = snapshot(victim)
    done, _ = _run(root, "--json")
    instances = _failed(done)
    assert instances["plant"]["status"] == "done"
    assert "tmp is a symbolic link" in instances["produce"]["message"], instances
    assert not changed(before, snapshot(victim)), changed(before, snapshot(victim))
    assert _gone(last_run_id(root))
