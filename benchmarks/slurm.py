#!/usr/bin/env python3
"""SLURM benchmark: repropack's slurm backend against Snakemake's SLURM executor plugin, same cluster.

The workflow: N trivial scatter instances (each writes a small file) plus a gather of all of them,
submitted to the local one-node cluster (scripts/engines.sh). Contenders, in alternating rounds:

- ``snakemake-default``: ``snakemake --executor slurm -j 100`` with the plugin's defaults (it waits
  40 s before the first status check and 10 s between checks, which suits large clusters);
- ``snakemake-tuned``: the same, tuned for small jobs (``--slurm-init-seconds-before-status-checks
  1 --seconds-between-status-checks 1 --slurm-array-jobs all``);
- ``repropack``: ``repropack run --profile hpc`` (backend slurm, runtime host), packing the
  scatter into as many array elements as the node has CPUs (``pack``).

After the rounds repropack runs alone at the large size. sbatch, squeue and sacct calls are counted
by shims first on PATH (each appends its name to a file, then runs the real command), for every tool.

Goals (issue 11), printed as PASS/FAIL, never asserted:
  - at N=100: >= 30x less wall than snakemake-default, >= 5x less than snakemake-tuned (medians)
  - 1,000 instances in under 20 s
  - sbatch calls at most one per step per MaxArraySize

Usage (the plugin is in the `bench` dependency group)::

    REPROPACK_UV_GROUPS="--group bench" source scripts/_venv.sh
    python benchmarks/slurm.py                      # N=100, 3 rounds, then 1,000 for repropack (~15 min)
    python benchmarks/slurm.py --size 20 --rounds 1 # CI: one round at the smallest useful size (~2 min)
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timed, check_output, fmt_s, goal, machine, run_timed, scatter_gather, tool  # noqa: E402

REPROPACK = [sys.executable, "-c", "import sys; from repropack.cli import main; sys.exit(main())"]
COUNTED = ("sbatch", "squeue", "sacct")
SHIMMED = COUNTED + ("scontrol", "scancel", "sacctmgr", "sinfo")

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


def shims(where: Path, counts: Path) -> Path:
    """A folder of sbatch/squeue/... scripts that count each call, then run the real command."""
    where.mkdir(parents=True, exist_ok=True)
    for name in SHIMMED:
        real = shutil.which(name)
        if real is None:
            continue
        (where / name).write_text(f'#!/bin/sh\necho {name} >> "{counts}"\nexec {real} "$@"\n')
        (where / name).chmod(0o755)
    return where


def read_counts(path: Path) -> Counter:
    return Counter(path.read_text().split()) if path.exists() else Counter()


def cpus() -> int:
    out = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True, check=True).stdout.split()
    return max(int(c) for c in out if c.isdigit())


def max_array() -> int:
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, check=True).stdout
    return next((int(line.split("=")[1]) for line in out.splitlines() if line.startswith("MaxArraySize")), 1001)


def repropack_project(root: Path, n: int, pack: int) -> Path:
    profile = f"""
[profiles.hpc]
backend = "slurm"
runtime = "host"
pack = {pack}
"""
    return scatter_gather(root, n, name=f"slurm-bench-{n}", extra=profile)


class Bench:
    def __init__(self, work: Path, timeout: float):
        self.work = work
        self.timeout = timeout
        self.walls: dict[tuple[str, int], list[float]] = {}
        self.calls: dict[tuple[str, int], Counter] = {}
        self.count = 0

    def run(self, name: str, n: int) -> Timed | None:
        self.count += 1
        root = self.work / f"{name}-{n}-{self.count}"
        counts = self.work / f"calls-{self.count}.txt"
        env = {**os.environ, "PATH": f"{shims(self.work / 'shims', counts)}:{os.environ['PATH']}"}
        if name == "repropack":
            repropack_project(root, n, pack=max(1, math.ceil(n / cpus())))
            argv = [*REPROPACK, "run", "--profile", "hpc", "-C", str(root)]
        else:
            snakemake = tool("snakemake")
            if snakemake is None:
                print(f"  {name}: snakemake is not installed (the bench group)")
                return None
            root.mkdir(parents=True)
            (root / "Snakefile").write_text(SNAKEFILE)
            argv = [snakemake, "--executor", "slurm", "-j", "100", "--config", f"count={n}", "--slurm-no-account",
                    "--default-resources", "slurm_partition=debug", "--latency-wait", "5", "--quiet", "all"]
            if name == "snakemake-tuned":
                argv += ["--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "1",
                         "--slurm-array-jobs", "all"]
        timed = run_timed(argv, cwd=root, log=self.work / f"{name}-{n}-{self.count}.log", timeout=self.timeout,
                          env=env)
        problem = None if timed.ok else f"exit {timed.code} (see {timed.log})"
        problem = problem or check_output(root, n)
        if problem:
            tail = timed.log.read_text(errors="replace").strip().splitlines()[-5:]
            print(f"  {name} at {n}: FAILED: {problem}\n    " + "\n    ".join(tail))
            return None
        self.walls.setdefault((name, n), []).append(timed.wall)
        self.calls[(name, n)] = read_counts(counts)
        calls = ", ".join(f"{c} {self.calls[(name, n)][c]}" for c in COUNTED)
        print(f"  {name:18s} n={n:<5d} {fmt_s(timed.wall):>9s}   calls: {calls}", flush=True)
        shutil.rmtree(root, ignore_errors=True)
        return timed

    def median(self, name: str, n: int) -> float | None:
        walls = self.walls.get((name, n))
        return statistics.median(walls) if walls else None


def ratio_goal(bench: Bench, peer: str, n: int, want: float) -> str:
    ours, theirs = bench.median("repropack", n), bench.median(peer, n)
    if ours is None or theirs is None:
        return goal(f"{want:g}x less wall than {peer} at {n}", None, "a side did not finish")
    ratio = theirs / ours
    return goal(f"{want:g}x less wall than {peer} at {n}", ratio >= want,
                f"{ratio:.1f}x ({fmt_s(theirs)} vs {fmt_s(ours)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100, help="instances in the side-by-side rounds")
    parser.add_argument("--large", type=int, default=1000, help="instances for repropack alone (0: skip)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds one tool run may take")
    parser.add_argument("--skip-defaults", action="store_true", help="leave out the plugin with its defaults")
    parser.add_argument("--only-repropack", action="store_true", help="no peer (a quick look at repropack's figures)")
    args = parser.parse_args()
    if shutil.which("sbatch") is None:
        print("no SLURM here (scripts/engines.sh slurm brings it up)")
        return 1
    print(machine())
    print(f"SLURM: {cpus()} cpus on the node, MaxArraySize {max_array()}")
    names = ["repropack"] if args.only_repropack else (
        ["repropack", "snakemake-tuned"] + ([] if args.skip_defaults else ["snakemake-default"]))
    with tempfile.TemporaryDirectory(prefix="repropack-slurm-bench-") as tmp:
        bench = Bench(Path(tmp), args.timeout)
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                bench.run(name, args.size)
        if args.large:
            bench.run("repropack", args.large)
        print("\ngoals (issue 11):")
        if not (args.skip_defaults or args.only_repropack):
            print(ratio_goal(bench, "snakemake-default", args.size, 30))
        if not args.only_repropack:
            print(ratio_goal(bench, "snakemake-tuned", args.size, 5))
        if args.large:
            wall = bench.median("repropack", args.large)
            print(goal(f"{args.large} instances under 20 s", None if wall is None else wall < 20,
                       fmt_s(wall) if wall is not None else "did not finish"))
        for (name, n), calls in sorted(bench.calls.items()):
            if name != "repropack":
                continue
            allowed = 2 * math.ceil(n / max_array()) if n > 1 else 2  # two steps
            print(goal(f"repropack sbatch calls at {n} <= one per step per MaxArraySize", calls["sbatch"] <= allowed,
                       f"{calls['sbatch']} (allowed {allowed})"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
