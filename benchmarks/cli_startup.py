"""Wall time of `repropack --help` beside `python -c pass` (the interpreter's own start).

Usage: python benchmarks/cli_startup.py [--repeat 10]

Runs each command --repeat times as a fresh process and prints best and median; the
difference is what repropack adds. Goal (issue 2): `repropack --help` under 0.3 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def timed(command: list[str], repeat: int) -> tuple[float, float]:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        runs.append(time.perf_counter() - start)
    return min(runs), statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    beside = Path(sys.executable).parent / "repropack"  # the console script of this interpreter's venv
    entry = str(beside) if beside.exists() else shutil.which("repropack")
    command = [entry, "--help"] if entry else [sys.executable, "-c", "from repropack.cli import _entry; _entry()", "--help"]
    bare = timed([sys.executable, "-c", "pass"], args.repeat)
    help_ = timed(command, args.repeat)
    check = timed(command[:-1] + ["check", "--help"], args.repeat)
    print(f"{args.repeat} runs each ({sys.executable})")
    print(f"  python -c pass             best {bare[0]:.3f} s  median {bare[1]:.3f} s")
    print(f"  repropack --help           best {help_[0]:.3f} s  median {help_[1]:.3f} s  "
          f"(+{help_[1] - bare[1]:.3f} s, {help_[1] / bare[1]:.1f}x)")
    print(f"  repropack check --help     best {check[0]:.3f} s  median {check[1]:.3f} s")
    verdict = "met" if help_[1] < 0.3 else "NOT met"
    print(f"goal: repropack --help under 0.3 s -> {verdict} ({help_[1]:.3f} s)")


if __name__ == "__main__":
    main()
