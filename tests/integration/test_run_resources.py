"""Issue 10 item 4: the figures of a step are those of its own processes, never the runner's.

Read through `repropack report --json` and `repropack logs`. As root the figures come from the step's
cgroup; as an unprivileged user from the /proc sampler (memory) and wait4 (CPU); in Docker from the
container's cgroup; in Apptainer from the cgroup its processes join on the host.
"""

from __future__ import annotations

import os

import pytest
from contain_help import ensure_user, give, project_dir, report_attempt, run_cli, say
from runhelp import write_project

MB = 1024 * 1024
# 200 MiB touched page by page and held for a second; a second of CPU, measured by the step itself.
HOLD = ("python3 -c 'import time; b = bytearray(200 * 1024 * 1024); "
        "b[::4096] = bytes(len(b) // 4096); time.sleep(1)'")
BUSY = "python3 -c 'import time\\nt = time.process_time()\\nwhile time.process_time() - t < 1: pass'"
STEPS = f"""
[[steps]]
name = "idle"
run = "true"
[[steps]]
name = "hold"
run = "{HOLD}"
[[steps]]
name = "busy"
run = "{BUSY}"
"""
SOURCES = {"root": "cgroup-v", "user": "proc-sampler", "docker": "cgroup-v", "apptainer": "cgroup-v"}


def _project(root, extra=""):
    return write_project(root, '[project]\nname = "p"\n' + extra + STEPS)


def _figures(who, root, args=()):
    done = run_cli(who, root, "run", "-j", "1", *args)
    assert done.returncode == 0, done.stderr + done.stdout
    return {step: report_attempt(who, root, step) for step in ("idle", "hold", "busy")}


def _check(figures, kind, *, idle=True):
    for step, attempt in figures.items():
        say(f"{kind} {step}: peak {attempt['peak_rss']} B ({attempt.get('peak_rss_source')}), "
            f"cpu {attempt['cpu']} s ({attempt.get('cpu_source')}), wall {attempt['wall']} s")
    if idle:  # the runner's ~25 MB is not in it (a sampler may see nothing of a step that short)
        assert figures["idle"]["peak_rss"] <= 5 * MB if kind != "user" else (figures["idle"]["peak_rss"] or 0) <= 5 * MB
    assert 180 * 10**6 <= figures["hold"]["peak_rss"] <= 260 * 10**6
    # the busy loop's own second: what the runtime costs around it is what `true` costs
    assert 0.8 <= figures["busy"]["cpu"] - figures["idle"]["cpu"] <= 1.2
    for attempt in figures.values():  # and the report says where they come from
        assert attempt["peak_rss_source"].startswith(SOURCES[kind])


@pytest.mark.parametrize("kind", ["root", "user"])
def test_issue10_host_figures_are_the_steps_own(tmp_path, kind):
    if kind == "root" and os.geteuid() != 0:
        pytest.skip("the cgroup variant needs root")
    who = ensure_user() if kind == "user" else None
    root = _project(project_dir(who, tmp_path))
    give(who, root)
    figures = _figures(who, root)
    _check(figures, kind)
    from repropack.human import fmt_bytes

    logs = run_cli(who, root, "logs", "hold")
    assert f"peak rss: {fmt_bytes(figures['hold']['peak_rss'])} ({SOURCES[kind]}" in logs.stdout


@pytest.mark.docker
def test_issue10_docker_figures_are_the_containers_own(tmp_path, base_image):
    if os.geteuid() != 0:
        pytest.skip("docker's figures come from a cgroup the runner makes (root)")
    root = _project(tmp_path / "p", f'[image]\nname = "{base_image}"\n[profiles.docker]\nruntime = "docker"\n')
    _check(_figures(None, root, ("--profile", "docker")), "docker")


@pytest.mark.docker
@pytest.mark.apptainer
def test_issue10_apptainer_figures_come_from_the_host_cgroup(tmp_path, base_image, base_sif):
    from runhelp import share_sif
    from test_run_engines import PROFILES

    if os.geteuid() != 0:
        pytest.skip("the cgroup path needs root")
    root = _project(tmp_path / "p", f'[image]\nname = "{base_image}"\n' + PROFILES)
    share_sif(root, base_sif)
    # Apptainer's own runtime (starter, squashfuse) is in the step's group too: no 5 MB bound for `true`
    _check(_figures(None, root, ("--profile", "apptainer")), "apptainer", idle=False)


@pytest.mark.docker
@pytest.mark.apptainer
def test_issue10_apptainer_memory_limit_is_the_host_cgroups(tmp_path, base_image, base_sif):
    from runhelp import share_sif
    from test_run_engines import PROFILES

    if os.geteuid() != 0:
        pytest.skip("the cgroup path needs root")
    root = write_project(tmp_path / "p", f'[project]\nname = "p"\n[image]\nname = "{base_image}"\n' + PROFILES + """
[[steps]]
name = "hungry"
run = "python3 -c 'b = bytearray(300_000_000)'"
resources = { memory = "100MB" }
""")
    share_sif(root, base_sif)
    done = run_cli(None, root, "run", "--profile", "apptainer")
    assert done.returncode == 1 and "oom" in done.stderr
    attempt = report_attempt(None, root, "hungry")
    assert attempt["failure"] == "oom" and attempt["peak_rss"] <= 100_000_000
