"""How long `load_manifest` takes on a large manifest, beside the bare TOML parse it builds on.

Usage: python benchmarks/manifest_load.py [--values 10000] [--repeat 5]

Writes a manifest whose scatter step has N foreach values plus a gather over them, then
times (best and median of --repeat runs, in this process): tomllib.loads alone (the floor),
load_manifest (parse, key positions, validation, DAG check) and expand (the instances).
Goal (issue 2): a 10,000-value foreach loads in well under a second.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from repropack.manifest import load_manifest  # noqa: E402
from repropack.manifest.dag import expand  # noqa: E402


def manifest_text(count: int) -> str:
    values = ", ".join(f'"s{i}"' for i in range(count))
    return f"""\
[project]
name = "big"

[params]
min_length = 3

[[steps]]
name = "count"
run = "python scripts/count.py --min-length {{params.min_length}} {{inputs}} > {{outputs}}"
foreach = {{ sample = [{values}] }}
inputs = ["data/{{sample}}.txt"]
outputs = ["results/{{sample}}.count"]

[[steps]]
name = "summary"
run = "python scripts/summary.py {{inputs:list}} > {{outputs}}"
inputs = ["results/{{sample}}.count"]
outputs = ["results/summary.tsv"]
"""


def timed(fn, repeat: int) -> tuple[float, float]:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return min(runs), statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--values", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "repropack.toml"
        text = manifest_text(args.values)
        path.write_text(text)
        manifest = load_manifest(tmp)  # warm imports once
        parse = timed(lambda: tomllib.loads(path.read_text()), args.repeat)
        load = timed(lambda: load_manifest(tmp), args.repeat)
        dag = timed(lambda: expand(manifest), args.repeat)
    print(f"manifest: {args.values:,} foreach values + a gather, {len(text) / 1024:.0f} KiB, {args.repeat} runs")
    print(f"  tomllib.loads alone    best {parse[0]:.3f} s  median {parse[1]:.3f} s")
    print(f"  load_manifest          best {load[0]:.3f} s  median {load[1]:.3f} s  ({load[1] / parse[1]:.1f}x the bare parse)")
    print(f"  expand (instances)     best {dag[0]:.3f} s  median {dag[1]:.3f} s")
    if args.values == 10_000:
        verdict = "met" if load[1] < 0.5 else "NOT met"
        print(f"goal: a 10,000-value foreach loads well under 1 s (here: < 0.5 s) -> {verdict} ({load[1]:.3f} s)")
    else:
        per = (load[1] - parse[1]) / args.values * 1e6
        print(f"(the goal is stated for 10,000 values; here {per:.1f} us per value beyond the bare parse)")


if __name__ == "__main__":
    main()
