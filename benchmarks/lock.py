"""`repropack lock`, relock, fetch and env create, each beside the raw work it wraps.

Usage: python benchmarks/lock.py [--quick] [--packages 200] [--mb 50] [--repeat 5] [--pip "requests tabulate ..."]

One run builds a conda channel (benchmarks/_lock_channel.py: --packages names x 3 versions
with dependencies, about --mb MB in the records the specs select) and a project with two
environments: `conda` (from that channel, through a file:// mirror) and `pip` (small real
PyPI packages, Python 3.11, linux-64: needs the network). Each figure is the median of
--repeat runs after one untimed round, the sides taken in turn (raw, repropack, raw, ...) so
that drifts in load, network or disk hit both; wall seconds, with the CPU seconds of this
process and of the children it waited for beside them.

(a) lock from scratch: `repropack lock` as a CLI process and as the in-process call
    (load_manifest + lock_project), against the raw work: `rattler.solve(...)` on the same
    channel plus `uv pip compile --generate-hashes` of the same PyPI specs for the same
    python/platform. The CLI is compared with the raw work run as a fresh Python process
    (interpreter start and `import rattler` are part of any tool's raw work), the in-process
    call with the raw work in this process. uv's cache (UV_CACHE_DIR, private to the run) is
    warmed by the untimed round, so both sides resolve from the same warm cache (uv still
    revalidates each index page with PyPI: the network is in both sides' figures).
(b) no-change relock (nothing written), CLI and in-process.
(c) fetch of the conda environment from a local HTTP server (http.server, in its own process,
    sendfile and a listen backlog of 128 so that it is not the bottleneck), into an empty
    REPROPACK_CACHE each run, against a sequential urllib download + hashlib sha256 + write of
    the same files.
(d) env create of the conda environment from a warm cache (artifacts fetched, rattler's
    extracted-package cache filled by the untimed round), against rattler.install of the
    solved records into a fresh prefix with its own warmed package cache.

What a run made is deleted and the disk synced between runs. Bytecode is cached (in the run's
temp dir) for every Python involved, as for an installed tool, unless --as-is-bytecode.
--quick (for CI, about half a minute): 60 packages, 10 MB, 3 runs. Goal (issue 3): lock
overhead under 1.2x, printed as PASS/FAIL lines (not a test: nothing fails on a slow machine).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _lock_channel  # noqa: E402

GOAL = 1.2
PLATFORM, PY_PLATFORM, PYTHON = "linux-64", "x86_64-manylinux_2_28", "3.11"
INDEX = "https://pypi.org/simple"
DEFAULT_PIP = "requests tabulate attrs six"

RAW_SCRIPT = """\
import asyncio, json, subprocess, sys
import rattler
channel, specs, uv = json.loads(sys.argv[1])
asyncio.run(rattler.solve(sources=[channel], specs=specs, platforms=["linux-64", "noarch"]))
subprocess.run(uv, check=True)
"""


def cli() -> list[str]:
    beside = Path(sys.executable).parent / "repropack"
    return [str(beside)] if beside.exists() else [sys.executable, "-c", "from repropack.cli import _entry; _entry()"]


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds of fn: CPU of every thread here plus of the child processes it waited for."""
    cpu, start = _cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - start, _cpu() - cpu


class Series:
    """Named lists of (wall, CPU) times; the figures are medians."""

    def __init__(self):
        self.runs: dict[str, list[tuple[float, float]]] = {}

    def add(self, name: str, times: tuple[float, float]) -> None:
        self.runs.setdefault(name, []).append(times)

    def med(self, name: str) -> float:
        return statistics.median(wall for wall, _ in self.runs[name])

    def best(self, name: str) -> float:
        return min(wall for wall, _ in self.runs[name])

    def cpu(self, name: str) -> float:
        return statistics.median(cpu for _, cpu in self.runs[name])


def manifest_text(specs: list[str], pip: list[str], channel: Path) -> str:
    return f"""\
[project]
name = "lockbench"

[environments.conda]
channels = ["{_lock_channel.CHANNEL_NAME}"]
conda = {json.dumps(specs)}
platforms = ["{PLATFORM}"]

[environments.pip]
python = "{PYTHON}"
pip = {json.dumps(pip)}
indexes = ["{INDEX}"]
platforms = ["{PLATFORM}"]

[channels.mirrors]
{_lock_channel.CHANNEL_NAME} = "{channel.as_uri()}"
"""


class Bench:
    def __init__(self, work: Path, channel: Path, specs: list[str], pip: list[str], repeat: int):
        self.work, self.channel, self.specs, self.pip, self.repeat = work, channel, specs, pip, repeat
        self.project = work / "project"
        self.project.mkdir()
        (self.project / "repropack.toml").write_text(manifest_text(specs, pip, channel))
        (work / "uv").mkdir()
        (work / "uv" / "requirements.in").write_text("".join(f"{p}\n" for p in pip))
        os.environ["UV_CACHE_DIR"] = str(work / "uv-cache")  # both sides, and the CLI children
        os.environ.pop("REPROPACK_CHANNEL_MIRRORS", None)
        self.s = Series()

    # ------------------------------------------------------------ (a) lock from scratch

    def uv_command(self) -> list[str]:
        from repropack.lock.solve_pypi import uv_bin

        return [uv_bin(), "pip", "compile", "requirements.in", "-o", "pylock.toml", "--no-header", "--no-config",
                "--quiet", "--python-version", PYTHON, "--python-platform", PY_PLATFORM, "--generate-hashes",
                "--only-binary", ":all:", "--index-url", INDEX]

    def raw_solve(self) -> None:
        _lock_channel.solve_records(self.channel, self.specs)

    def raw_uv(self) -> None:
        subprocess.run(self.uv_command(), cwd=self.work / "uv", check=True)

    def raw_process(self) -> None:
        arg = json.dumps([self.channel.as_uri(), self.specs, self.uv_command()])
        subprocess.run([sys.executable, "-c", RAW_SCRIPT, arg], cwd=self.work / "uv", check=True)

    def unlock(self) -> None:
        (self.project / "repropack.lock").unlink(missing_ok=True)
        shutil.rmtree(self.project / "locks", ignore_errors=True)

    def lock_cli(self, *args: str) -> str:
        proc = subprocess.run([*cli(), "lock", "-C", str(self.project), *args], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"repropack lock failed: {proc.stderr.strip()}")
        return proc.stderr  # the human summary ("lock unchanged", "wrote ...") is on stderr

    def lock_inprocess(self):
        from repropack.lock import lock_project
        from repropack.manifest import load_manifest

        return lock_project(load_manifest(self.project))

    def run_lock(self) -> None:
        for warm in (True,) + (False,) * self.repeat:
            solve, uv = timed(self.raw_solve), timed(self.raw_uv)
            raw_proc = timed(self.raw_process)
            self.unlock()
            lock_cli = timed(self.lock_cli)
            self.unlock()
            lock_in = timed(self.lock_inprocess)
            if warm:
                continue
            raw = (solve[0] + uv[0], solve[1] + uv[1])
            for name, value in (("solve", solve), ("uv", uv), ("raw", raw), ("raw_proc", raw_proc),
                                ("lock_cli", lock_cli), ("lock_in", lock_in)):
                self.s.add(name, value)
        self.check_same_result()

    def check_same_result(self) -> None:
        """Both sides did the same work: the same conda records and the same wheels were locked."""
        import tomllib

        from repropack.lock.condalock import read_conda_packages

        locked = read_conda_packages(self.project / "locks/conda/conda-lock.yml")
        ours = {(p.name, p.version, p.build) for p in locked}
        raw = {(r.name.normalized, str(r.version), str(r.build))
               for r in _lock_channel.solve_records(self.channel, self.specs)}
        wheels = [{(p["name"], p["version"]) for p in tomllib.loads(path.read_text())["packages"]}
                  for path in (self.project / "locks/pip/pylock.linux-64.toml", self.work / "uv" / "pylock.toml")]
        if ours != raw or wheels[0] != wheels[1]:
            raise SystemExit("repropack and the raw calls locked different packages; the comparison is void")

    # ------------------------------------------------------------ (b) no-change relock

    def run_relock(self) -> None:
        before = _digests(self.project)
        for _ in range(self.repeat):
            self.s.add("relock_cli", timed(lambda: self._expect_unchanged(self.lock_cli())))
            self.s.add("relock_in", timed(lambda: self._expect_unchanged(self.lock_inprocess().written)))
        if _digests(self.project) != before:
            raise SystemExit("a no-change relock rewrote a lock file")

    @staticmethod
    def _expect_unchanged(out) -> None:
        if out not in ("lock unchanged\n", []):
            raise SystemExit(f"a no-change relock wrote something: {out!r}")

    # ------------------------------------------------------------ (c) fetch over HTTP

    def run_fetch(self) -> int:
        from repropack.lock import fetch, load_lockset
        from repropack.lock.cache import ArtifactCache
        from repropack.lock.channels import mirrors, to_download
        from repropack.lock.fetcher import environment_artifacts
        from repropack.manifest import load_manifest

        with _lock_channel.Server(self.channel) as server:
            os.environ["REPROPACK_CHANNEL_MIRRORS"] = f"{_lock_channel.CHANNEL_NAME}={server.url}"
            manifest = load_manifest(self.project)
            lockset = load_lockset(self.project)
            artifacts = environment_artifacts(lockset, "conda")
            mirror_map = mirrors(manifest.mirrors, self.project)
            urls = [(to_download(a.url, mirror_map), a.sha256, a.filename) for a in artifacts]
            total = sum((self.channel / a.url.rsplit("/", 2)[-2] / a.filename).stat().st_size for a in artifacts)
            sides = {
                "urllib": lambda dest: _lock_channel.urllib_fetch(urls, dest),
                "fetch_cli": lambda dest: subprocess.run([*cli(), "fetch", "-C", str(self.project), "conda"],
                                                         env={**os.environ, "REPROPACK_CACHE": str(dest)},
                                                         check=True, capture_output=True),
                "fetch_in": lambda dest: fetch(lockset, manifest=manifest, environments=["conda"],
                                               cache=ArtifactCache(dest)),
            }
            for warm in (True,) + (False,) * self.repeat:
                for name, side in sides.items():
                    took = timed(lambda: side(self.work / "fetched"))
                    _clear(self.work / "fetched")
                    if not warm:
                        self.s.add(name, took)
            os.environ.pop("REPROPACK_CHANNEL_MIRRORS")
        return total

    # ------------------------------------------------------------ (d) env create, warm cache

    def run_env_create(self) -> None:
        import rattler

        from repropack.lock import ensure_fresh, fetch
        from repropack.lock.cache import ArtifactCache
        from repropack.lock.materializer import ensure_host_environment
        from repropack.manifest import load_manifest

        cache_dir = self.work / "cache"
        os.environ["REPROPACK_CACHE"] = str(cache_dir)
        fetch(ensure_fresh(load_manifest(self.project)), environments=["conda"], cache=ArtifactCache(cache_dir))
        records = _lock_channel.solve_records(self.channel, self.specs)
        envs = self.project / ".repropack" / "envs"

        def create_in() -> None:
            ensure_host_environment(ensure_fresh(load_manifest(self.project)), "conda")

        def create_cli() -> None:
            subprocess.run([*cli(), "env", "create", "-C", str(self.project), "conda"], check=True,
                           capture_output=True)

        def raw(target: Path) -> None:
            asyncio.run(rattler.install(records, target_prefix=target, cache_dir=self.work / "raw-pkgs",
                                        platform=rattler.Subdir(PLATFORM), execute_link_scripts=False,
                                        show_progress=False))

        sides = {"create_cli": (create_cli, envs), "create_in": (create_in, envs),
                 "install": (lambda: raw(self.work / "raw-env"), self.work / "raw-env")}
        for warm in (True,) + (False,) * self.repeat:  # the untimed first round fills the package caches
            for name, (side, made) in sides.items():
                took = timed(side)
                _clear(made)
                if not warm:
                    self.s.add(name, took)
        os.environ.pop("REPROPACK_CACHE")


def _clear(path: Path) -> None:
    """Remove what a run made and let the disk settle (freed blocks are discarded at the next commit)."""
    shutil.rmtree(path, ignore_errors=True)
    os.sync()


def _digests(root: Path) -> dict[str, str]:
    files = [root / "repropack.lock", *sorted((root / "locks").rglob("*"))]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.is_file()}


def report(b: Bench, args, setup: float, selected: int, fetched: int, load: tuple[str, str]) -> None:
    s = b.s
    mb = fetched / 1e6

    def row(label: str, ours: str, peer: str, peer_label: str) -> None:
        print(f"  {label:<37} {s.med(ours):7.3f} s (cpu {s.cpu(ours):6.3f})   {peer_label:<40} "
              f"{s.med(peer):7.3f} s (cpu {s.cpu(peer):6.3f})   {s.med(ours) / s.med(peer):5.2f}x")

    print(f"channel: {args.packages} packages x 3 versions, {selected} selected by {len(b.specs)} specs, "
          f"{mb:.1f} MB selected (built in {setup:.1f} s); PyPI: {' '.join(b.pip)} (python {PYTHON}, {PLATFORM})")
    print(f"median of {b.repeat} runs each, wall (and CPU) seconds; ratio = repropack / peer (wall); "
          f"load average {load[0]} at start, {load[1]} at end")
    print("(a) lock from scratch (conda + pip environments)")
    print(f"      raw parts in process: rattler.solve {s.med('solve'):.3f} s + uv pip compile {s.med('uv'):.3f} s")
    row("repropack lock (CLI process)", "lock_cli", "raw_proc", "raw solve + uv in a fresh python process")
    row("lock_project (in process)", "lock_in", "raw", "raw solve + uv, in process")
    row("  (CLI vs the in-process raw work)", "lock_cli", "raw", "raw solve + uv, in process")
    print("(b) no-change relock (writes nothing)")
    row("repropack lock (CLI process)", "relock_cli", "lock_cli", "vs a lock from scratch (CLI)")
    row("lock_project (in process)", "relock_in", "lock_in", "vs a lock from scratch (in process)")
    print(f"(c) fetch {mb:.1f} MB from http://127.0.0.1 (empty cache each run)")
    for name, label in (("fetch_cli", "repropack fetch (CLI process)"), ("fetch_in", "fetch() (in process)")):
        print(f"  {label:<37} {s.med(name):7.3f} s (cpu {s.cpu(name):6.3f}) {mb / s.med(name):5.1f} MB/s   "
              f"urllib+hashlib+write, sequential {s.med('urllib'):7.3f} s (cpu {s.cpu('urllib'):6.3f}) "
              f"{mb / s.med('urllib'):5.1f} MB/s   {s.med(name) / s.med('urllib'):5.2f}x")
    print(f"(d) env create from a warm cache ({selected} conda packages, {mb:.1f} MB)")
    row("repropack env create (CLI process)", "create_cli", "install", "rattler.install, same records")
    row("ensure_host_environment (in process)", "create_in", "install", "rattler.install, same records")
    for label, ours, peer in (("CLI", "lock_cli", "raw_proc"), ("in-process", "lock_in", "raw")):
        ratio = s.med(ours) / s.med(peer)
        verdict = "PASS" if ratio < GOAL else "FAIL"
        print(f"{verdict}: lock overhead ({label}) {ratio:.2f}x the raw rattler solve + uv resolve (goal < {GOAL}x; "
              f"best runs {s.best(ours) / s.best(peer):.2f}x, CPU {s.cpu(ours) / s.cpu(peer):.2f}x)")


def _bytecode(work: Path, keep_environment: bool) -> str:
    """Let every Python here and in the children cache bytecode (privately), as an installed tool does."""
    if keep_environment:
        return f"as the environment says (PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r})"
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    sys.dont_write_bytecode, sys.pycache_prefix = False, str(work / "pycache")
    return "on (PYTHONPYCACHEPREFIX in the run's temp dir, filled by the untimed first round)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small and short, for CI: 60 packages, 10 MB, 3 runs")
    parser.add_argument("--packages", type=int, default=None, help="package names in the channel (default 200)")
    parser.add_argument("--mb", type=float, default=None, help="MB of selected packages (default 50)")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs of each side (default 5)")
    parser.add_argument("--pip", default=DEFAULT_PIP, help=f"PyPI requirements (default: {DEFAULT_PIP!r})")
    parser.add_argument("--as-is-bytecode", action="store_true",
                        help="keep PYTHONDONTWRITEBYTECODE as set (default: cache bytecode in the run's temp dir)")
    args = parser.parse_args()
    args.packages = args.packages or (60 if args.quick else 200)
    args.mb = args.mb or (10 if args.quick else 50)
    args.repeat = args.repeat or (3 if args.quick else 5)
    with tempfile.TemporaryDirectory(prefix="repropack-bench-lock-") as tmp:
        work = Path(tmp)
        load_start = " ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"python bytecode cache: {_bytecode(work, args.as_is_bytecode)}", flush=True)
        start = time.perf_counter()
        specs, selected = _lock_channel.build(work / "channel", args.packages, args.mb)
        setup = time.perf_counter() - start
        bench = Bench(work, work / "channel", specs, args.pip.split(), args.repeat)
        bench.run_lock()
        bench.run_relock()
        fetched = bench.run_fetch()
        bench.run_env_create()
        load_end = " ".join(f"{x:.1f}" for x in os.getloadavg())
        report(bench, args, setup, selected, fetched, (load_start, load_end))


if __name__ == "__main__":
    main()
