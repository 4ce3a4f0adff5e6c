#!/usr/bin/env python3
"""Runner benchmark: repropack against Snakemake 9 and Luigi 3.8, the same workflow, in one run.

The workflow: N trivial shell instances (each writes a small file) plus a gather of all of
them, 2 jobs at once. repropack runs `repropack run -j 2`; Snakemake `--cores 2`; Luigi
2 workers with the local scheduler, each task a subprocess shell command writing an atomic
target (``LocalTarget.temporary_path``). Each tool's wall time is that of its whole process
(start-up included); peak memory is the largest RSS in its process tree (wait4's ru_maxrss).

Goals (issue 4), printed as PASS/FAIL, never asserted:
  - at 1,000 instances: >= 15x less wall than Snakemake and >= 3x less than Luigi (Snakemake also at 10,000)
  - repropack at 100,000: the marginal time per instance between 10k and 100k within 1.5x of that
    between 1k and 10k, and peak memory under 1 GB
  - a no-op rerun of 10,000 cached instances under 2 s

Usage (Snakemake and Luigi are in the `bench` dependency group)::

    REPROPACK_UV_GROUPS="--group bench" source scripts/_venv.sh
    python benchmarks/runner.py            # full: 1k / 10k / 100k, about 10 minutes on 2 cores
    python benchmarks/runner.py --quick    # CI: 200 instances, peers included, under a minute
    python benchmarks/runner.py --profile 1000   # cProfile of repropack's runner at 1,000 instances
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, Timed, fmt_s, goal, machine, run_timed, tool  # noqa: E402

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
    root.mkdir(parents=True)
    values = ", ".join(str(i) for i in range(n))
    (root / "repropack.toml").write_text(textwrap.dedent(f"""\
        [project]
        name = "bench-{n}"

        [[steps]]
        name = "make"
        run = "echo {{i}} > {{outputs}}"
        foreach = {{ i = [{values}] }}
        outputs = ["out/{{i}}.txt"]

        [[steps]]
        name = "gather"
        run = "xargs cat < {{inputs:list}} > {{outputs}}"
        inputs = ["out/{{i}}.txt"]
        outputs = ["all.txt"]
        """), encoding="utf-8")
    return root


def check_output(root: Path, n: int) -> str | None:
    try:
        lines = (root / "all.txt").read_text().split()
    except FileNotFoundError:
        return "no all.txt"
    return None if sorted(map(int, lines)) == list(range(n)) else f"all.txt has {len(lines)} lines, not {n}"


class Bench:
    def __init__(self, work: Path, timeout: float, peer_timeout: float):
        self.work = work
        self.timeout = timeout
        self.peer_timeout = peer_timeout
        self.results: dict[tuple[str, int], Timed] = {}
        self.noop: dict[int, Timed] = {}
        self.floor: float | None = None

    def _report(self, name: str, n: int, timed: Timed, root: Path) -> Timed:
        made = len(os.listdir(root / "out")) if (root / "out").is_dir() else 0
        problem = (f"killed at the {timed.wall:.0f} s time-out with {made:,} of {n:,} instances made"
                   if timed.code is None else (None if timed.ok else f"exit {timed.code}"))
        problem = problem or check_output(root, n)
        status = "ok" if problem is None else f"FAILED ({problem}; log {timed.log})"
        print(f"  {name:<10} {n:>7,} instances  {fmt_s(timed.wall)}  peak {timed.peak_rss / 1e6:7.1f} MB  {status}",
              flush=True)
        if problem is not None:
            timed.code = timed.code if timed.code not in (0,) else 1
        self.results[(name, n)] = timed
        return timed

    def repropack(self, n: int) -> Timed:
        root = repropack_project(self.work / f"repropack-{n}", n)
        timed = run_timed([*REPROPACK, "run", "-j", str(JOBS), "-C", str(root)], cwd=root,
                          log=self.work / f"repropack-{n}.log", timeout=self.timeout)
        return self._report("repropack", n, timed, root)

    def repropack_noop(self, n: int) -> Timed:
        root = self.work / f"repropack-{n}"
        timed = run_timed([*REPROPACK, "run", "-j", str(JOBS), "-C", str(root)], cwd=root,
                          log=self.work / f"repropack-{n}-noop.log", timeout=self.timeout)
        ran = _journal_ran(root)
        print(f"  {'no-op':<10} {n:>7,} cached     {fmt_s(timed.wall)}  peak {timed.peak_rss / 1e6:7.1f} MB  "
              f"{'ok' if timed.ok and ran == 0 else f'FAILED (exit {timed.code}, {ran} instances ran)'}", flush=True)
        self.noop[n] = timed
        return timed

    def snakemake(self, n: int) -> Timed | None:
        exe = tool("snakemake")
        if exe is None:
            print("  snakemake  not installed (uv sync --group bench)")
            return None
        root = self.work / f"snakemake-{n}"
        root.mkdir()
        (root / "Snakefile").write_text(SNAKEFILE, encoding="utf-8")
        timed = run_timed([exe, "--cores", str(JOBS), "--config", f"count={n}", "--quiet", "all"], cwd=root,
                          log=self.work / f"snakemake-{n}.log", timeout=self.peer_timeout)
        return self._report("snakemake", n, timed, root)

    def luigi(self, n: int) -> Timed | None:
        if tool("luigi") is None:
            print("  luigi      not installed (uv sync --group bench)")
            return None
        root = self.work / f"luigi-{n}"
        root.mkdir()
        (root / "wf.py").write_text(LUIGI, encoding="utf-8")
        timed = run_timed([sys.executable, "wf.py", str(n)], cwd=root, log=self.work / f"luigi-{n}.log",
                          timeout=self.peer_timeout)
        return self._report("luigi", n, timed, root)

    def wall(self, name: str, n: int) -> float | None:
        timed = self.results.get((name, n))
        return timed.wall if timed is not None and timed.ok else None

    def timed_out(self, name: str, n: int) -> float | None:
        """The time-out a run was killed at (a lower bound on its wall), or None."""
        timed = self.results.get((name, n))
        return timed.wall if timed is not None and timed.code is None else None


def floor(work: Path, n: int) -> float:
    """The floor: n bare `sh -c 'echo i > out/i.txt'` spawns, 2 at a time, from this process."""
    import subprocess
    import time

    root = work / f"floor-{n}"
    (root / "out").mkdir(parents=True)
    start = time.perf_counter()
    running: dict[int, subprocess.Popen] = {}
    for i in range(n):
        while len(running) >= JOBS:
            pid, _ = os.wait()
            running.pop(pid, None)
        proc = subprocess.Popen(["sh", "-c", f"echo {i} > out/{i}.txt"], cwd=root)
        running[proc.pid] = proc
    while running:
        pid, _ = os.wait()
        running.pop(pid, None)
    wall = time.perf_counter() - start
    print(f"  {'floor':<10} {n:>7,} bare sh   {fmt_s(wall)}  ({wall / n * 1e3:.2f} ms per spawn)", flush=True)
    return wall


def _journal_ran(root: Path) -> int:
    """Instances that started in the last run (0 for a true no-op)."""
    path = root / ".repropack" / "journal.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    last = max((i for i, r in enumerate(records) if r["t"] == "run"), default=0)
    return sum(1 for r in records[last:] if r["t"] == "start")


def ratio_goal(bench: Bench, peer: str, n: int, want: float) -> str:
    mine, theirs = bench.wall("repropack", n), bench.wall(peer, n)
    bound = bench.timed_out(peer, n)
    if mine is not None and theirs is None and bound is not None:
        ratio = bound / mine
        return goal(f"{want:g}x less wall than {peer} at {n:,}", True if ratio >= want else None,
                    f"{peer} killed at {bound:.0f} s / repropack {mine:.2f} s: at least {ratio:.1f}x")
    if mine is None or theirs is None:
        return goal(f"{want:g}x less wall than {peer} at {n:,}", None, "not measured")
    ratio = theirs / mine
    return goal(f"{want:g}x less wall than {peer} at {n:,}", ratio >= want,
                f"{peer} {theirs:.2f} s / repropack {mine:.2f} s = {ratio:.1f}x")


def summary(bench: Bench, sizes: list[int], peers_at: dict[str, list[int]], noop_at: int, quick: bool) -> None:
    print("\nwall time (s), 2 parallel jobs, N trivial shell instances + 1 gather")
    print(f"  {'N':>8}  {'repropack':>10}  {'snakemake':>10}  {'luigi':>10}  {'smk/rp':>7}  {'luigi/rp':>8}")
    for n in sizes:
        rp, sm, lu = bench.wall("repropack", n), bench.wall("snakemake", n), bench.wall("luigi", n)
        r1 = f"{sm / rp:6.1f}x" if rp and sm else "      -"
        r2 = f"{lu / rp:7.1f}x" if rp and lu else "       -"
        cells = [f"{v:10.2f}" if v is not None else (f"{'>' + format(b, '.0f'):>10}" if b else f"{'-':>10}")
                 for v, b in ((rp, None), (sm, bench.timed_out("snakemake", n)), (lu, bench.timed_out("luigi", n)))]
        print(f"  {n:>8,}  {'  '.join(cells)}  {r1}  {r2}")
    if bench.floor is not None:
        print(f"  floor (bare sh spawns at {sizes[0]:,}): {bench.floor:.2f} s")
    print("\ngoals" + (" (quick mode: measured at the quick size, the goals are stated at 1,000 / 10,000)" if quick else ""))
    first = sizes[0]
    print(ratio_goal(bench, "snakemake", first, 15))
    print(ratio_goal(bench, "luigi", first, 3))
    for n in peers_at["snakemake"][1:]:
        print(ratio_goal(bench, "snakemake", n, 15))
    if len(sizes) >= 3:
        a, b, c = sizes[:3]
        ta, tb, tc = (bench.wall("repropack", x) for x in (a, b, c))
        if None in (ta, tb, tc):
            print(goal("marginal time per instance", None, "a repropack run failed"))
        else:
            m1, m2 = (tb - ta) / (b - a), (tc - tb) / (c - b)
            print(goal(f"marginal time per instance {b:,}->{c:,} within 1.5x of {a:,}->{b:,}", m2 <= 1.5 * m1,
                       f"{m2 * 1e3:.3f} ms vs {m1 * 1e3:.3f} ms ({m2 / m1:.2f}x)"))
    largest = max((n for (name, n) in bench.results if name == "repropack"), default=None)
    if largest is not None:
        peak = bench.results[("repropack", largest)].peak_rss
        print(goal(f"peak memory at {largest:,} under 1 GB", peak < 1e9, f"{peak / 1e6:.0f} MB"))
    if noop_at in bench.noop:
        t = bench.noop[noop_at]
        print(goal(f"no-op rerun of {noop_at:,} cached instances under 2 s", t.ok and t.wall < 2.0, f"{t.wall:.2f} s"))


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
    parser.add_argument("--quick", action="store_true", help="200 instances, peers included (CI).")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                        help="repropack sizes (default 1000,10000,100000); peers run at the first two.")
    parser.add_argument("--no-peers", action="store_true", help="Run repropack alone.")
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
    sizes = args.sizes or ([200] if args.quick else [1_000, 10_000, 100_000])
    peers_at = {"snakemake": [] if args.no_peers else sizes[:2], "luigi": [] if args.no_peers else sizes[:1]}
    noop_at = sizes[0] if args.quick else next((n for n in sizes if n >= 10_000), sizes[-1])
    bench = Bench(work, args.timeout, args.peer_timeout)
    # repropack first at every size, the slow peers after: a run cut short still has repropack's figures
    print("\nrepropack", flush=True)
    bench.floor = floor(work, sizes[0])
    for n in sizes:
        bench.repropack(n)
        if n == noop_at:
            bench.repropack_noop(n)
    if peers_at["luigi"] or peers_at["snakemake"]:
        print("\npeers", flush=True)
    for n in sizes:
        if n in peers_at["luigi"]:
            bench.luigi(n)
        if n in peers_at["snakemake"]:
            bench.snakemake(n)
    summary(bench, sizes, peers_at, noop_at, args.quick)
    failed = [f"{name} {n}" for (name, n), t in bench.results.items() if not t.ok and t.code is not None]
    if failed:
        print(f"\nruns that failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
