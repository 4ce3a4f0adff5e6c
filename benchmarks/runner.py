#!/usr/bin/env python3
"""Runner benchmark: repropack against Snakemake 9 and Luigi 3.8, the same workflow, side by side.

The workflow: N trivial shell instances (each writes a small file) plus a gather of all of
them, 2 jobs at once. repropack runs `repropack run -j 2`; Snakemake `--cores 2`; Luigi
2 workers with the local scheduler, each task a subprocess shell command writing an atomic
target (``LocalTarget.temporary_path``). At the first size the three run in alternating rounds
(the order rotates each round) and the medians are compared; the other sizes run repropack alone.
Each tool's wall time is that of its whole process (start-up included); peak memory is the
largest RSS of one process of its tree (wait4's ru_maxrss).

The runner's own CPU: everything `repropack run` costs (runner, supervisor, helpers, in a cgroup
made around it, plus the steps' CPU from its records, since the steps run in cgroups of their own)
minus the CPU of a minimal loop spawning the same `bash` scripts at the same parallelism (in a
cgroup too), per instance.

Goals (issue 10), printed as PASS/FAIL, never asserted:
  - at 1,000 instances: >= 20x less wall than Snakemake and >= 5x less than Luigi (medians)
  - the runner's own CPU per instance <= 0.5 ms
  - 100,000 instances: peak RSS under 400 MB, under 100 MB of records on disk
  - a no-op rerun of 10,000 cached instances under 1 s
It also prints the files and folders each tool creates per instance (repropack: anything under
the project but the outputs, .repropack/envs and .repropack/cache; Snakemake: .snakemake/; Luigi:
anything but the outputs).

Usage (Snakemake and Luigi are in the `bench` dependency group)::

    REPROPACK_UV_GROUPS="--group bench" source scripts/_venv.sh
    python benchmarks/runner.py --sizes 1000   # CI: 3 rounds against the peers, about 2 minutes
    python benchmarks/runner.py                # 1k (rounds) / 10k / 100k, about 10 minutes on 2 cores
    python benchmarks/runner.py --profile 1000 # cProfile of repropack's runner at 1,000 instances
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cgroup_cpu import FLOOR_LOOP, entries_under, floor_project, size_under, wrapped  # noqa: E402
from _common import REPO, Timed, check_output, fmt_s, goal, machine, run_timed, scatter_gather, tool  # noqa: E402

JOBS = 2
REPROPACK = [sys.executable, "-c", "import sys; from repropack.cli import main; sys.exit(main())"]

SNAKEFILE = """\
N = int(config["count"])

rule all:
    input: "all.txt"

rule make:
    output: "out/{i}.txt"
    shell: "echo {wildcards.i} > {output}"

rule gather:
    input: expand("out/{i}.txt", i=range(N))
    output: "all.txt"
    shell: "cat {input} > {output}"
"""

LUIGI = """\
import subprocess, sys
import luigi

class Make(luigi.Task):
    i = luigi.IntParameter()
    def output(self):
        return luigi.LocalTarget(f"out/{self.i}.txt")
    def run(self):
        with self.output().temporary_path() as tmp:
            subprocess.run(["sh", "-c", f"echo {self.i} > {tmp}"], check=True)

class Gather(luigi.Task):
    n = luigi.IntParameter()
    def requires(self):
        return [Make(i=i) for i in range(self.n)]
    def output(self):
        return luigi.LocalTarget("all.txt")
    def run(self):
        with open("inputs.list", "w") as handle:
            handle.writelines(t.path + "\\n" for t in self.input())
        with self.output().temporary_path() as tmp:
            subprocess.run(["sh", "-c", f"xargs cat < inputs.list > {tmp}"], check=True)

if __name__ == "__main__":
    ok = luigi.build([Gather(n=int(sys.argv[1]))], workers=2, local_scheduler=True, log_level="WARNING")
    sys.exit(0 if ok else 1)
"""


def repropack_project(root: Path, n: int) -> Path:
    return scatter_gather(root, n, name=f"bench-{n}")


NAMES = ("repropack", "snakemake", "luigi", "floor")


class Bench:
    def __init__(self, work: Path, timeout: float, peer_timeout: float):
        self.work = work
        self.timeout = timeout
        self.peer_timeout = peer_timeout
        self.walls: dict[tuple[str, int], list[float]] = {}
        self.cpus: dict[tuple[str, int], list[float]] = {}  # whole-tree CPU per run (s)
        self.cpu_source = "?"
        self.entries: dict[str, float] = {}  # files and folders created per instance
        self.peak: dict[int, int] = {}
        self.records: dict[int, tuple[int, int]] = {}  # size -> (run folder bytes, journal bytes)
        self.noop: dict[int, Timed] = {}
        self.failed: list[str] = []
        self.killed: dict[tuple[str, int], float] = {}

    def _report(self, name: str, n: int, timed: Timed, root: Path, cpu: float | None) -> bool:
        made = len(os.listdir(root / "out")) if (root / "out").is_dir() else 0
        problem = (f"killed at the {timed.wall:.0f} s time-out with {made:,} of {n:,} instances made"
                   if timed.code is None else (None if timed.ok else f"exit {timed.code}"))
        problem = problem or (check_output(root, n) if name != "floor" else None)
        status = "ok" if problem is None else f"FAILED ({problem}; log {timed.log})"
        cpu_text = f"  cpu {cpu:7.2f} s" if cpu is not None else ""
        print(f"  {name:<10} {n:>7,}  {fmt_s(timed.wall)}{cpu_text}  peak {timed.peak_rss / 1e6:7.1f} MB  {status}",
              flush=True)
        if timed.code is None:
            self.killed[(name, n)] = timed.wall
        if problem is not None:
            self.failed.append(f"{name} {n}")
            return False
        self.walls.setdefault((name, n), []).append(timed.wall)
        if cpu is not None:
            self.cpus.setdefault((name, n), []).append(cpu)
        return True

    def repropack(self, n: int, tag: str) -> Path:
        root = repropack_project(self.work / f"repropack-{n}-{tag}", n)
        got = wrapped([*REPROPACK, "run", "-j", str(JOBS), "-C", str(root)], cwd=root,
                      log=self.work / f"repropack-{n}-{tag}.log", timeout=self.timeout)
        self.cpu_source = got.source
        cpu = got.cpu + _steps_cpu(root) if got.cpu is not None else None
        if self._report("repropack", n, got.timed, root, cpu):
            skip = ("out", "all.txt", "repropack.toml", ".repropack/envs", ".repropack/cache")
            self.entries["repropack"] = entries_under(root, skip) / (n + 1)
            self.peak[n] = max(self.peak.get(n, 0), got.timed.peak_rss)
            runs = root / ".repropack" / "runs"
            self.records[n] = (size_under(runs), size_under(root / ".repropack" / "journal.jsonl"))
        return root

    def repropack_noop(self, n: int, root: Path) -> None:
        timed = run_timed([*REPROPACK, "run", "-j", str(JOBS), "-C", str(root)], cwd=root,
                          log=self.work / f"repropack-{n}-noop.log", timeout=self.timeout)
        ran = _journal_ran(root)
        print(f"  {'no-op':<10} {n:>7,}  {fmt_s(timed.wall)}  peak {timed.peak_rss / 1e6:7.1f} MB  "
              f"{'ok' if timed.ok and ran == 0 else f'FAILED (exit {timed.code}, {ran} instances ran)'}", flush=True)
        self.noop[n] = timed

    def snakemake(self, n: int, tag: str) -> None:
        exe = tool("snakemake")
        if exe is None:
            print("  snakemake  not installed (uv sync --group bench)")
            return
        root = self.work / f"snakemake-{n}-{tag}"
        root.mkdir()
        (root / "Snakefile").write_text(SNAKEFILE, encoding="utf-8")
        timed = run_timed([exe, "--cores", str(JOBS), "--config", f"count={n}", "--quiet", "all"], cwd=root,
                          log=self.work / f"snakemake-{n}-{tag}.log", timeout=self.peer_timeout)
        if self._report("snakemake", n, timed, root, None):
            self.entries["snakemake"] = entries_under(root / ".snakemake", ()) / (n + 1)

    def luigi(self, n: int, tag: str) -> None:
        if tool("luigi") is None:
            print("  luigi      not installed (uv sync --group bench)")
            return
        root = self.work / f"luigi-{n}-{tag}"
        root.mkdir()
        (root / "wf.py").write_text(LUIGI, encoding="utf-8")
        timed = run_timed([sys.executable, "wf.py", str(n)], cwd=root, log=self.work / f"luigi-{n}-{tag}.log",
                          timeout=self.peer_timeout)
        if self._report("luigi", n, timed, root, None):
            self.entries["luigi"] = entries_under(root, ("out", "all.txt", "wf.py")) / (n + 1)

    def floor(self, n: int, tag: str) -> None:
        """A minimal loop spawning the scripts repropack runs (`bash -euo pipefail script.sh`), 2 at a time."""
        from repropack.backends.runtimes import HOST_ARGV
        from repropack.run.records.format import script_text

        root = floor_project(self.work / f"floor-{n}-{tag}", n, lambda i: script_text(f"make[i={i}]", 1,
                                                                                     f"echo {i} > out/{i}.txt"))
        got = wrapped([sys.executable, "-S", "-c", FLOOR_LOOP, str(n), str(JOBS), *HOST_ARGV], cwd=root,
                      log=self.work / f"floor-{n}-{tag}.log", timeout=self.timeout)
        self._report("floor", n, got.timed, root, got.cpu)

    def median(self, table: dict[tuple[str, int], list[float]], name: str, n: int) -> float | None:
        values = table.get((name, n))
        return statistics.median(values) if values else None


def _steps_cpu(root: Path) -> float:
    """The CPU the last run's steps used, from its journal (they ran in cgroups of their own)."""
    total = 0.0
    for record in _last_run(root):
        if record.get("t") == "attempt":
            total += (record.get("metrics") or {}).get("cpu") or 0.0
    return total


def _last_run(root: Path) -> list[dict]:
    path = root / ".repropack" / "journal.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    last = max((i for i, r in enumerate(records) if r["t"] == "run"), default=0)
    return records[last:]


def _journal_ran(root: Path) -> int:
    """Instances that started in the last run (0 for a true no-op)."""
    return sum(1 for r in _last_run(root) if r["t"] == "start")


def ratio_goal(bench: Bench, peer: str, n: int, want: float) -> str:
    label = f"{want:g}x less wall than {peer} at {n:,} (medians)"
    mine, theirs = bench.median(bench.walls, "repropack", n), bench.median(bench.walls, peer, n)
    bound = bench.killed.get((peer, n))
    if mine is not None and theirs is None and bound is not None:
        ratio = bound / mine
        return goal(label, True if ratio >= want else None, f"{peer} killed at {bound:.0f} s: at least {ratio:.1f}x")
    if mine is None or theirs is None:
        return goal(label, None, "not measured")
    return goal(label, theirs / mine >= want, f"{peer} {theirs:.2f} s / repropack {mine:.2f} s = {theirs / mine:.1f}x")


def summary(bench: Bench, sizes: list[int], rounds: int) -> None:
    first = sizes[0]
    print(f"\nwall time (s), 2 parallel jobs, N trivial shell instances + 1 gather; medians of {rounds} round(s) at "
          f"{first:,}")
    print(f"  {'N':>8}  {'repropack':>10}  {'snakemake':>10}  {'luigi':>10}  {'floor':>8}  {'smk/rp':>7}  {'luigi/rp':>8}")
    for n in sizes:
        rp, sm, lu, fl = (bench.median(bench.walls, name, n) for name in NAMES)
        r1 = f"{sm / rp:6.1f}x" if rp and sm else "      -"
        r2 = f"{lu / rp:7.1f}x" if rp and lu else "       -"
        cells = [f"{v:10.2f}" if v is not None else f"{'-':>10}" for v in (rp, sm, lu)]
        print(f"  {n:>8,}  {'  '.join(cells)}  {f'{fl:8.2f}' if fl is not None else '-':>8}  {r1}  {r2}")
    print("\nfiles and folders created per instance: "
          + ", ".join(f"{name} {bench.entries[name]:.3f}" for name in NAMES if name in bench.entries))
    for n in sizes:
        if n in bench.records:
            runs, journal = bench.records[n]
            print(f"records at {n:,}: run folders {runs / 1e6:.1f} MB + journal {journal / 1e6:.1f} MB")
    print("\ngoals")
    print(ratio_goal(bench, "snakemake", first, 20))
    print(ratio_goal(bench, "luigi", first, 5))
    floor_cpu = bench.median(bench.cpus, "floor", first)
    for n in sizes:
        cpu = bench.median(bench.cpus, "repropack", n)
        label = f"runner's own CPU per instance at {n:,} <= 0.5 ms"
        if cpu is None or floor_cpu is None:
            print(goal(label, None, f"not measured (CPU from {bench.cpu_source})"))
            continue
        own = (cpu / n - floor_cpu / first) * 1e3
        print(goal(label, own <= 0.5, f"{own:.3f} ms (repropack {cpu:.2f} s, minus the floor's "
                                      f"{floor_cpu / first * 1e3:.2f} ms per spawn; {bench.cpu_source})"))
    if 100_000 in bench.peak:
        peak = bench.peak[100_000]
        print(goal("peak RSS at 100,000 under 400 MB", peak < 400e6, f"{peak / 1e6:.0f} MB"))
    if 100_000 in bench.records:
        size = sum(bench.records[100_000])
        print(goal("records at 100,000 under 100 MB", size < 100e6, f"{size / 1e6:.1f} MB"))
    for n, t in bench.noop.items():
        print(goal(f"no-op rerun of {n:,} cached instances under 1 s", t.ok and t.wall < 1.0, f"{t.wall:.2f} s"))


def profile(work: Path, n: int, top: int) -> None:
    """cProfile of `repropack run` at n instances (the runner's process; the steps are children)."""
    import pstats

    root = repropack_project(work / f"profile-{n}", n)
    out = work / f"profile-{n}.pstats"
    entry = work / "repropack_main.py"
    entry.write_text("import sys\nfrom repropack.cli import main\nsys.exit(main())\n", encoding="utf-8")
    argv = [sys.executable, "-m", "cProfile", "-o", str(out), str(entry), "run", "-j", str(JOBS), "-C", str(root)]
    timed = run_timed(argv, cwd=root, log=work / f"profile-{n}.log", timeout=3600)
    print(f"repropack run at {n:,} instances under cProfile: {timed.wall:.2f} s (exit {timed.code})")
    stats = pstats.Stats(str(out))
    for key in ("tottime", "cumulative"):
        print(f"\n-- top {top} by {key}")
        stats.sort_stats(key).print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1_000, 10_000, 100_000],
                        help="repropack sizes (default 1000,10000,100000); the peers run at the first, in rounds.")
    parser.add_argument("--rounds", type=int, default=3, help="Alternating rounds at the first size (default 3).")
    parser.add_argument("--no-peers", action="store_true", help="Run repropack (and the floor) alone.")
    parser.add_argument("--timeout", type=float, default=1800, help="Seconds before a repropack run is killed.")
    parser.add_argument("--peer-timeout", type=float, default=900,
                        help="Seconds before a Snakemake or Luigi run is killed (its wall is then a lower bound).")
    parser.add_argument("--workdir", type=Path, help="Keep the projects and logs here (default: a temp dir, removed).")
    parser.add_argument("--profile", type=int, metavar="N", help="Only profile repropack's runner at N instances.")
    parser.add_argument("--top", type=int, default=25, help="Functions shown per profile listing.")
    args = parser.parse_args(argv)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="repropack-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}\nrepo: {REPO}\nwork: {work}", flush=True)
    try:
        if args.profile:
            profile(work, args.profile, args.top)
            return 0
        return run(args, work)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> int:
    sizes = args.sizes
    noop_at = next((n for n in sizes if n >= 10_000), sizes[0])
    bench = Bench(work, args.timeout, args.peer_timeout)
    first = sizes[0]
    names = ["repropack", "floor"] + ([] if args.no_peers else ["snakemake", "luigi"])
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]  # who goes first rotates
        print(f"\nround {r + 1} at {first:,}: {', '.join(order)}", flush=True)
        for name in order:
            root = getattr(bench, name)(first, f"r{r}")
            if name == "repropack" and r == 0 and noop_at == first:
                bench.repropack_noop(first, root)
    for n in sizes[1:]:
        print(f"\nrepropack alone at {n:,}", flush=True)
        root = bench.repropack(n, "r0")
        if n == noop_at:
            bench.repropack_noop(n, root)
        shutil.rmtree(root, ignore_errors=True)
    summary(bench, sizes, args.rounds)
    if bench.failed:
        print(f"\nruns that failed: {', '.join(bench.failed)}")
    return 1 if bench.failed else 0


if __name__ == "__main__":
    sys.exit(main())
