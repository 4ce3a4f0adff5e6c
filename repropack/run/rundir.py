"""Run directories: one per step instance, with fixed file names (format 1 of the run records).

Every reader goes through :mod:`repropack.run.records.reader`, which reads this layout and
format 2 (:mod:`repropack.run.records.format`) into one view.

Layout (every backend writes the same names, so status, logs, provenance and
the report read one format whether a job ran here, under SLURM or on Batch)::

    .repropack/runs/<run-id>/
        run.json                      the run: id, start, argv, host, profile
        <instance-dir>/               one per step instance (see instance_dirname)
            instance.json             id, step, wildcards, key, command, requested resources
            inputs.list               the inputs, one per line (only for {inputs:list})
            checksums                 sha256sum lines of the outputs, after success
            attempt-<n>/
                script.sh             the exact script that ran (bash -euo pipefail)
                stdout, stderr        its output streams
                exit_code             the exit status as a shell reports it (128+N for signal N)
                metrics.json          start, end, wall, cpu, peak_rss, requested, failure, backend, job
                out-<n>-<name>        output n while it is written (moved into place on success)
        scratch/<slot>/home, tmp/     scratch HOME and TMPDIR, one pair per concurrent job slot,
                                      emptied between steps and removed at the end of the run
    .repropack/runs/latest            a file holding the last run's id

A remote backend writes script.sh before submitting and has the job (or its
poller) write stdout, stderr, exit_code and metrics.json; nothing else is needed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repropack.run.safepath import DIR_FLAGS, UnsafePath, open_regular, remove_entry
from repropack.run.statefiles import open_state

RUNS = Path(".repropack") / "runs"
SCRIPT, STDOUT, STDERR, EXIT_CODE, METRICS, CHECKSUMS = (
    "script.sh",
    "stdout",
    "stderr",
    "exit_code",
    "metrics.json",
    "checksums",
)
INSTANCE_JSON = "instance.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


def instance_dirname(instance_id: str) -> str:
    """A file-name-safe, unique, still readable directory name for an instance id."""
    readable = _UNSAFE.sub(".", instance_id).strip(".")[:80] or "instance"
    tag = hashlib.sha1(instance_id.encode("utf-8")).hexdigest()[:8]
    return f"{readable}-{tag}"


def runs_root(project: Path) -> Path:
    return Path(project) / RUNS


def run_root(project: Path, run_id: str) -> Path:
    return runs_root(project) / run_id


def mark_latest(project: Path, run_id: str) -> None:
    """Record the last run's id in ``runs/latest`` (a small file: copies and archives keep it)."""
    link = runs_root(project) / "latest"
    tmp = link.with_name(f".latest.{os.getpid()}")
    with removed_on_failure(tmp):
        with os.fdopen(open_state(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "w", encoding="utf-8") as handle:
            handle.write(run_id + "\n")
        os.replace(tmp, link)  # replaces whatever entry is there (never writes through a link)


def leftovers(run_dir: Path) -> list[Path]:
    """What a finished run no longer needs: outputs its failed attempts left half-written
    (``attempt-<n>/out-*``; a successful attempt's were moved into place) and its scratch
    folder. Its records and logs are not among them."""
    found = [run_dir / "scratch"] if (run_dir / "scratch").is_dir() else []
    try:
        instances = [e for e in os.scandir(run_dir) if e.is_dir(follow_symlinks=False) and e.name != "scratch"]
    except FileNotFoundError:
        return found
    for inst in instances:
        for attempt in os.scandir(inst.path):
            if attempt.name.startswith("attempt-") and attempt.is_dir(follow_symlinks=False):
                found += [Path(e.path) for e in os.scandir(attempt.path) if e.name.startswith("out-")]
    return found


def latest_run(project: Path) -> str | None:
    """The last run's id; a ``latest`` that is a link or a folder is refused, not followed."""
    try:
        with os.fdopen(open_state(runs_root(project) / "latest", os.O_RDONLY), "rb") as handle:
            return handle.read(4096).decode("utf-8", "replace").strip() or None
    except FileNotFoundError:
        return None


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with removed_on_failure(tmp):
        with os.fdopen(_open_in_run_dir(str(tmp)), "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True, default=str)
        os.replace(tmp, path)

@contextlib.contextmanager
def removed_on_failure(tmp: Path) -> Iterator[None]:
    """A temporary file that a failed write (a full disk) must not leave behind; the error names
    it (Python's buffered writes raise at close without a file name)."""
    try:
        yield
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(tmp)) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


_WRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
_OVERWRITE = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC


def _open_in_run_dir(path: str, flags: int = _WRITE) -> int:
    """Open a run-directory file for writing without following a link a step planted.

    A container may write its instance folder (it is mounted), so it can put a link where
    metrics.json will go, or swap its attempt folder for a link: the folder is opened with
    O_NOFOLLOW and a link (or FIFO) at the file is removed, never written through. The folders
    above (.repropack/runs/<run>/<instance>) are the runner's own and no container can replace them.
    """
    parent, _, name = path.rpartition("/")
    dir_fd = os.open(parent, DIR_FLAGS)
    try:
        try:
            return open_regular(name, flags, dir_fd=dir_fd, shown=path)
        except UnsafePath:
            remove_entry(dir_fd, name)
            return open_regular(name, flags | os.O_EXCL, dir_fd=dir_fd, shown=path)
    except UnsafePath as exc:
        raise OSError(f"{exc}") from None
    finally:
        os.close(dir_fd)


def write_file(path: str | os.PathLike[str], data: bytes) -> None:
    """Open, write, close (this runs several times per instance), never through a planted link.

    No temporary file: run-directory files are written once, before the journal records
    what they describe, so a file a ``done`` record points at is always complete. An existing
    file (a slot's script.sh) is overwritten, then cut to its new length: not O_TRUNC, which
    frees its block, and freeing a block costs a discard of about 1.3 ms on this disk.
    """
    fd = _open_in_run_dir(os.fspath(path), _OVERWRITE)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.ftruncate(fd, len(data))
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, os.fspath(path)) from None
    finally:
        os.close(fd)


def dump_json(data: Mapping[str, Any]) -> bytes:
    # One line: with `indent`, json falls back to its pure-Python encoder (about 10x slower).
    return json.dumps(data, sort_keys=True, default=str).encode("utf-8") + b"\n"


@dataclass(frozen=True)
class AttemptDir:
    path: Path
    attempt: int

    @property
    def script(self) -> Path:
        return self.path / SCRIPT

    @property
    def stdout(self) -> Path:
        return self.path / STDOUT

    @property
    def stderr(self) -> Path:
        return self.path / STDERR

    @property
    def exit_code(self) -> Path:
        return self.path / EXIT_CODE

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    def write_result(self, exit_status: int | None, metrics: Mapping[str, Any]) -> None:
        # Written once per attempt, after the job ended: no temporary file and rename needed.
        base = f"{self.path}/"
        if exit_status is not None:
            write_file(base + EXIT_CODE, b"%d\n" % exit_status)
        write_file(base + METRICS, dump_json(metrics))

    def read_exit_code(self) -> int | None:
        try:
            return int(self.exit_code.read_text(encoding="ascii").strip())
        except (FileNotFoundError, ValueError):
            return None

    def read_metrics(self) -> dict[str, Any]:
        try:
            return json.loads(self.metrics.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}

@dataclass(frozen=True)
class InstanceDir:
    path: Path

    @property
    def checksums(self) -> Path:
        return self.path / CHECKSUMS

    @property
    def inputs_list(self) -> Path:
        return self.path / "inputs.list"

    def attempt(self, n: int) -> AttemptDir:
        return AttemptDir(self.path / f"attempt-{n}", n)

    def attempts(self) -> list[AttemptDir]:
        found = []
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return []
        for name in names:
            if name.startswith("attempt-") and name[8:].isdigit():
                found.append(self.attempt(int(name[8:])))
        return sorted(found, key=lambda a: a.attempt)

    def last_attempt(self) -> AttemptDir | None:
        attempts = self.attempts()
        return attempts[-1] if attempts else None

    def write_instance(self, data: Mapping[str, Any]) -> None:
        write_file(f"{self.path}/{INSTANCE_JSON}", dump_json(data))


def instance_dir(project: Path, run_id: str, instance_id: str) -> InstanceDir:
    return InstanceDir(run_root(project, run_id) / instance_dirname(instance_id))


def tail(path: Path, lines: int = 20, max_bytes: int = 64 << 10) -> str:
    """The last `lines` lines of a log file (reads at most `max_bytes` from its end)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except FileNotFoundError:
        return ""
    text = data.decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


def dir_size(path: Path) -> int:
    total = 0
    for root, dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


class Writer:
    """Writes run-directory files in line, keeping the first errors instead of raising.

    (A background thread was tried: waking it per file cost more in GIL hand-offs than
    the few system calls it took off the main thread.) The journal, not these files,
    is the record of what finished; each file is complete before the record naming it.
    """

    def __init__(self) -> None:
        self.errors: list[str] = []

    def submit(self, fn, *args) -> None:
        try:
            fn(*args)
        except OSError as exc:
            if len(self.errors) < 10:
                self.errors.append(f"{exc.filename or ''}: {exc.strerror or exc}")

    def close(self) -> None:
        pass


class ScratchSlots:
    """One reusable folder per concurrent job: the attempt's folder (its script, streams and staged
    outputs) holding the step's scratch HOME and TMPDIR. Made once, emptied between steps, removed
    at the end of the run: no folder is made or removed per instance."""

    KEEP = ("home", "tmp")

    def __init__(self, run_dir: Path):
        self.root = run_dir / "scratch"
        self._free: list[Path] = []
        self._count = 0

    def take(self) -> Path:
        if self._free:
            return self._free.pop()
        self._count += 1
        slot = self.root / str(self._count)
        (slot / "home").mkdir(parents=True)
        (slot / "tmp").mkdir()
        return slot

    def give_back(self, slot: Path, *, clean: bool = True) -> None:
        """``clean``: also remove everything else the slot holds (what a failed attempt left staged,
        whatever a container put in its writable folder, links included, never followed); without
        it the slot's script and streams are overwritten by the next step (a successful host step
        left nothing else: its outputs were renamed into place)."""
        slot_fd = os.open(slot, DIR_FLAGS)  # the slot is a mount point in a container: never replaced
        try:
            if clean:
                for entry in _names(slot_fd):
                    if entry not in self.KEEP:
                        remove_entry(slot_fd, entry)
            else:  # the next step's streams are opened with O_TRUNC: never through a planted link
                for name in (STDOUT, STDERR):
                    try:
                        if not stat.S_ISREG(os.lstat(name, dir_fd=slot_fd).st_mode):
                            remove_entry(slot_fd, name)
                    except FileNotFoundError:
                        pass
            for name in self.KEEP:
                _empty(slot_fd, name)  # a step's HOME or TMPDIR must not leak into the next step
        finally:
            os.close(slot_fd)
        self._free.append(slot)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _names(dir_fd: int) -> list[str]:
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)


def _empty(slot_fd: int, name: str) -> None:
    """Empty folder `name` of a slot; a step that swapped it for a link or file gets a new folder.

    Not rmdir + mkdir for a real folder: freeing a directory block costs a discard on this disk.
    """
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=slot_fd)
    except OSError:  # a link (ELOOP), a file (ENOTDIR) or gone: replace it, following nothing
        remove_entry(slot_fd, name)
        os.mkdir(name, 0o777, dir_fd=slot_fd)
        return
    try:
        for entry in os.listdir(fd):
            remove_entry(fd, entry)
    finally:
        os.close(fd)
