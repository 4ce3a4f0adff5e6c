"""The cgroup layer on a fake cgroupfs tree (the real ones: tests/integration/test_run_contain.py)."""

from __future__ import annotations

import os
from pathlib import Path

from repropack.backends.local import cgroups


V1_FILES = {"memory": ("memory.max_usage_in_bytes", "memory.limit_in_bytes", "memory.usage_in_bytes",
                       "memory.oom_control", "cgroup.procs"),
            "cpuacct": ("cpuacct.usage", "cgroup.procs")}


def _v1(root: Path) -> Path:
    for name, files in V1_FILES.items():
        (root / name).mkdir(parents=True)
        for f in files:
            (root / name / f).write_text("0\n")
    return root


def _v2(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    return root


def test_detect_v1_v2_and_none(tmp_path):
    v1 = cgroups.detect(_v1(tmp_path / "a"))
    assert v1 == cgroups.Layout(1, tmp_path / "a/memory", tmp_path / "a/cpuacct")
    v2 = cgroups.detect(_v2(tmp_path / "b"))
    assert v2 == cgroups.Layout(2, tmp_path / "b", tmp_path / "b")
    assert v2.hierarchies == (tmp_path / "b",)
    assert cgroups.detect(tmp_path / "nothing") is None


def _group(layout: cgroups.Layout, base: Path) -> cgroups.Group:
    dirs = tuple(d / "s1" for d in (layout.memory, layout.cpu))
    for d, name in zip(dirs, V1_FILES):
        d.mkdir(parents=True)
        for f in V1_FILES[name]:
            (d / f).write_text("0\n")
    return cgroups.Group(layout, dirs, limited=True)


def test_v1_figures_subtract_what_an_earlier_step_left_and_reset(tmp_path):
    layout = cgroups.Layout(1, tmp_path / "memory", tmp_path / "cpuacct")
    group = _group(layout, tmp_path)
    mem, cpu = group.dirs
    (mem / "memory.usage_in_bytes").write_text("1000000\n")  # page cache of the slot's last step
    (mem / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    (mem / "memory.max_usage_in_bytes").write_text("9000000\n")
    (cpu / "cpuacct.usage").write_text("7\n")
    group.reset()
    assert (mem / "memory.max_usage_in_bytes").read_text().startswith("0")
    assert (cpu / "cpuacct.usage").read_text().startswith("0")
    (mem / "memory.max_usage_in_bytes").write_text("5000000\n")
    (cpu / "cpuacct.usage").write_text("1500000000\n")
    assert group.measure() == {"oom": False, "cpu": 1.5, "cpu_source": "cgroup-v1",
                               "peak_rss": 4_000_000, "peak_rss_source": "cgroup-v1"}
    (mem / "memory.oom_control").write_text("oom_kill 3\n")
    assert group.measure()["oom"] is True
    assert group.procs_files == f"{mem}/cgroup.procs {cpu}/cgroup.procs"


def test_v2_figures_and_limit(tmp_path):
    layout = cgroups.Layout(2, tmp_path, tmp_path)
    d = tmp_path / "m1"
    d.mkdir()
    group = cgroups.Group(layout, (d,), limited=True)
    (d / "memory.swap.max").write_text("")  # cgroupfs files take a write whole; a plain file is empty first
    (d / "memory.max").write_text("")
    group.limit(100_000_000)
    assert (d / "memory.max").read_text() == "100000000" and (d / "memory.swap.max").read_text() == "0"
    (d / "memory.peak").write_text("7340032\n")
    (d / "cpu.stat").write_text("usage_usec 250000\nuser_usec 200000\n")
    (d / "memory.events").write_text("low 0\noom 1\noom_kill 1\n")
    assert group.measure() == {"oom": True, "cpu": 0.25, "cpu_source": "cgroup-v2",
                               "peak_rss": 7340032, "peak_rss_source": "cgroup-v2"}


def test_leftovers_of_dead_runners_go_live_ones_stay(tmp_path):
    base = tmp_path / "memory" / cgroups.BASE
    dead, live, old = base / "r1@999999999", base / f"r2@{os.getpid()}", base / "r0"
    for d in (dead / "s1", live / "s1", old):
        d.mkdir(parents=True)
    assert cgroups.remove_leftovers(tmp_path) == ["r0", "r1@999999999"]
    assert live.is_dir() and not dead.exists() and not old.exists()
    assert cgroups.run_dirs("r2", tmp_path) == [live]
