#!/usr/bin/env python3
"""Output hashing benchmark: repropack's checksums against hashlib.sha256, one core and all cores.

What is compared, on the same bytes (files in the page cache, read once beforehand):
  - hashlib.sha256 over an in-memory buffer, one core: the ceiling for one thread;
  - repropack.run.checksums.sha256_files(paths, workers=1): reading the files and hashing them;
  - sha256_files(paths) with the default workers (one per core): how it scales;
  - coreutils sha256sum, one process, for reference;
  - many small files (the common case of a scatter), files per second.

Goals (issue 4), printed as PASS/FAIL, never asserted: one-core throughput at least 80% of
hashlib.sha256's, and with N cores at least 0.75 x N times the one-core figure (large files).

Usage: python benchmarks/hashing.py [--quick] [--size-mb 128] [--files 8]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import goal, machine  # noqa: E402

from repropack.run.checksums import default_workers, sha256_files  # noqa: E402


def best_of(repeat: int, fn) -> float:
    return interleaved(repeat, {"x": fn})["x"]


def interleaved(repeat: int, fns: dict) -> dict:
    """Best time of each function over `repeat` rounds, one call of each per round, so that a
    burst of load on the machine hits every contender rather than one."""
    best = {name: float("inf") for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def _hashlib_threads(buffer: bytearray, count: int, threads: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: hashlib.sha256(buffer).hexdigest(), range(count)))


def make_files(root: Path, count: int, size: int) -> list[Path]:
    block = os.urandom(1 << 20)
    paths = []
    for n in range(count):
        path = root / f"big-{n}.bin"
        with open(path, "wb") as handle:
            for _ in range(size >> 20):
                handle.write(block[n:] + block[:n])  # distinct files, same cost
        paths.append(path)
    return paths


def warm(paths: list[Path]) -> None:
    for path in paths:
        with open(path, "rb") as handle:
            while handle.read(1 << 24):
                pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="Smaller files (CI).")
    parser.add_argument("--size-mb", type=int, help="Size of each large file (default 128, quick 32).")
    parser.add_argument("--files", type=int, help="Number of large files (default 8, quick 4).")
    parser.add_argument("--small", type=int, help="Number of 4 kB files (default 20000, quick 2000).")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    size = (args.size_mb or (32 if args.quick else 128)) << 20
    count = args.files or (4 if args.quick else 8)
    small = args.small or (2_000 if args.quick else 20_000)
    cores = default_workers()
    print(f"machine: {machine()}")
    work = Path(tempfile.mkdtemp(prefix="repropack-hash-"))
    try:
        paths = make_files(work, count, size)
        warm(paths)
        total = count * size
        gb = total / 1e9
        buffer = bytearray(os.urandom(1 << 20)) * (size >> 20)
        best = interleaved(args.repeat, {
            "hashlib": lambda: [hashlib.sha256(buffer).hexdigest() for _ in range(count)],
            "one": lambda: sha256_files(paths, workers=1),
            "all": lambda: sha256_files(paths),
            "threads": lambda: _hashlib_threads(buffer, count, cores),
        })
        t_hashlib, t_one, t_all = best["hashlib"], best["one"], best["all"]
        t_sum = None
        if shutil.which("sha256sum"):
            t_sum = best_of(1, lambda: subprocess.run(["sha256sum", *map(str, paths)], check=True,
                                                     stdout=subprocess.DEVNULL))
        assert sha256_files(paths[:1]) == [hashlib.sha256(paths[0].read_bytes()).hexdigest()]
        print(f"\n{count} files x {size >> 20} MB ({gb:.2f} GB), best of {args.repeat}")
        rows = [("hashlib.sha256, in memory, 1 core", t_hashlib),
                (f"hashlib.sha256, in memory, {cores} threads", best["threads"]),
                ("repropack sha256_files, 1 worker", t_one), (f"repropack sha256_files, {cores} workers", t_all)]
        if t_sum is not None:
            rows.append(("coreutils sha256sum, 1 process", t_sum))
        for label, t in rows:
            print(f"  {label:<40} {t:7.3f} s  {gb / t:6.2f} GB/s")
        small_dir = work / "small"
        small_dir.mkdir()
        smalls = []
        for n in range(small):
            p = small_dir / f"{n}.txt"
            p.write_bytes(os.urandom(4096))
            smalls.append(p)
        t_small = best_of(args.repeat, lambda: sha256_files(smalls))
        print(f"  {small:,} files of 4 kB: {t_small:.3f} s, {small / t_small:,.0f} files/s")
        one_ratio = t_hashlib / t_one
        scale = t_one / t_all
        want_scale = 0.75 * min(cores, count)
        print("\ngoals")
        print(goal("one core at least 80% of hashlib.sha256", one_ratio >= 0.8, f"{one_ratio * 100:.0f}%"))
        ceiling = t_hashlib / best["threads"]
        print(goal(f"scales with cores ({cores} workers at least {want_scale:.2f}x one)", scale >= want_scale
                   if cores > 1 else None, f"{scale:.2f}x (bare hashlib in {cores} threads, the ceiling now: "
                   f"{ceiling:.2f}x)"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
