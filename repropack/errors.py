"""The one exception hierarchy of repropack.

Every error that a user can cause or meet derives from :class:`ReproError`.
``repropack.cli.main`` turns one into a single line on stderr and an exit code;
library code raises, never prints or exits. Subclasses carry structured fields
so that callers (and tests) inspect data, not message text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The exit codes, one table: ``repropack --help`` and docs/cli.md show it (a test keeps all three equal).
# A subclass inherits its parent's code; give one a new code only for a new row here.
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_MANIFEST = 3
EXIT_LOCK = 4
EXIT_RESOURCES = 5
EXIT_BUSY = 6
EXIT_STORAGE = 7
EXIT_ARCHIVE = 8
EXIT_INTERRUPTED = 130

EXIT_CODES: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "success"),
    (EXIT_FAILURE, "a step, a verification, a download or a build failed"),
    (EXIT_USAGE, "the command line is wrong (unknown option, step, profile or parameter)"),
    (EXIT_MANIFEST, "repropack.toml is invalid or missing"),
    (EXIT_LOCK, "repropack.lock is missing or stale (run `repropack lock`)"),
    (EXIT_RESOURCES, "a step asks for more cpus, memory or gpus than the profile allows"),
    (EXIT_BUSY, "another `repropack run` is active in this project"),
    (EXIT_STORAGE, "a file cannot be read or written (disk full, read-only project, permission denied)"),
    (EXIT_ARCHIVE, "an archive is truncated, tampered with, unsafe to extract, untrusted or from a newer format"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C, SIGINT or SIGTERM); finished work is kept"),
)


class ReproError(Exception):
    """Root of every error repropack raises on purpose."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(ReproError):
    """The command line asked for something that cannot be done as asked."""

    exit_code = EXIT_USAGE


class ManifestError(ReproError):
    """``repropack.toml`` is wrong; names the file, line:column and dotted key."""

    exit_code = EXIT_MANIFEST

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        key: str | None = None,
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
    ):
        self.path = Path(path) if path is not None else None
        self.key = key
        self.line = line
        self.column = column
        where = _where(self.path, line, column, key)
        super().__init__(f"{where}: {message}" if where else message, hint=hint)
        self.reason = message


def _where(path: Path | None, line: int | None, column: int | None, key: str | None) -> str:
    parts = []
    if path is not None:
        loc = str(path)
        if line is not None:
            loc += f":{line}"
            if column is not None:
                loc += f":{column}"
        parts.append(loc)
    if key:
        parts.append(key)
    return ": ".join(parts)


class ManifestErrors(ManifestError):
    """Several manifest problems at once (``repropack check`` prints them all)."""

    def __init__(self, errors: list[ManifestError]):
        self.errors = errors
        first = errors[0]
        more = f" (and {len(errors) - 1} more problem(s); run `repropack check`)" if len(errors) > 1 else ""
        super().__init__(first.reason + more, path=first.path, key=first.key, line=first.line, column=first.column, hint=first.hint)


class LockError(ReproError):
    """Solving, writing or reading a lock failed."""


class StaleLockError(LockError):
    """The lock is missing, does not match the manifest or was edited; names what changed."""

    exit_code = EXIT_LOCK


class SolveError(LockError):
    """The specs cannot be satisfied; names the conflicting packages."""


class FetchError(ReproError):
    """A locked artifact could not be downloaded or verified."""


@dataclass
class DigestMismatch:
    name: str
    expected: str
    actual: str


class EnvironmentCreateError(ReproError):
    """A locked environment could not be installed."""


class BuildError(ReproError):
    """An image or SIF could not be built, loaded or pushed."""


class EngineUnavailable(ReproError):
    """A container or batch engine is missing or not answering."""

    def __init__(self, engine: str, detail: str, *, hint: str | None = None):
        self.engine = engine
        self.detail = detail
        super().__init__(f"{engine} is not available: {detail}", hint=hint)


class RunError(ReproError):
    """The workflow could not be run as asked (before or between steps)."""


class StepFailed(RunError):
    """A step instance failed after all its attempts."""

    def __init__(
        self,
        step: str,
        *,
        backend: str,
        job_id: str | None,
        exit_status: int | None,
        failure: str,
        log_tail: str = "",
        run_dir: Path | None = None,
    ):
        self.step = step
        self.backend = backend
        self.job_id = job_id
        self.exit_status = exit_status
        self.failure = failure
        self.log_tail = log_tail
        self.run_dir = run_dir
        where = f" (logs: {run_dir})" if run_dir else ""
        super().__init__(f"step {step} failed on {backend}: {failure}{where}")


class ResourceRequestRefused(RunError):
    """A step asks for more than its profile (or this machine) can ever give; nothing was run."""

    exit_code = EXIT_RESOURCES


class RunLocked(RunError):
    """Another ``repropack run`` is active in this project."""

    exit_code = EXIT_BUSY


class VerifyError(ReproError):
    """Outputs do not match their recorded or expected checksums."""


class FormatVersionError(ReproError):
    """A file was written by a newer repropack (lock, journal, provenance, archive)."""

    def __init__(self, what: str, path: Path | str, found: int, supported: int):
        self.what = what
        self.path = Path(path)
        self.found = found
        self.supported = supported
        super().__init__(
            f"{path}: {what} format version {found} is newer than this repropack supports ({supported})",
            hint="upgrade repropack",
        )


class ArchiveError(ReproError):
    """A publication archive cannot be trusted or extracted as it stands; names the member and why."""

    exit_code = EXIT_ARCHIVE

    def __init__(self, message: str, *, archive: Path | str | None = None, member: str | None = None,
                 hint: str | None = None):
        self.archive = Path(archive) if archive is not None else None
        self.member = member
        where = ": ".join(str(p) for p in (archive, member) if p is not None)
        super().__init__(f"{where}: {message}" if where else message, hint=hint)
        self.reason = message


class ArchiveVersionError(ArchiveError):
    """The archive was written by a newer repropack."""

    def __init__(self, archive: Path | str, found: object, supported: int):
        self.found = found
        self.supported = supported
        super().__init__(f"archive format version {found} is newer than this repropack supports ({supported})",
                         archive=archive, hint="upgrade repropack")


class RunInterrupted(RunError):
    """The run was stopped by SIGINT/SIGTERM; finished instances are journaled."""

    exit_code = EXIT_INTERRUPTED


class BackendError(RunError):
    """A backend could not submit, poll or cancel a job (engine down, time-out, refused)."""

    def __init__(self, backend: str, message: str, *, job_id: str | None = None, hint: str | None = None):
        self.backend = backend
        self.job_id = job_id
        super().__init__(f"{backend}: {message}", hint=hint)


class StorageError(ReproError):
    """A file repropack must read or write cannot be: disk full, read-only, permission denied.

    Raised from the ``OSError``; names the file (project-relative where it can) and the reason.
    """

    exit_code = EXIT_STORAGE

    def __init__(self, path: Path | str | None, reason: str, *, errno: int | None = None, hint: str | None = None):
        self.path = Path(path) if path is not None else None
        self.errno = errno
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path is not None else reason, hint=hint)

    @classmethod
    def from_os(cls, exc: OSError, root: Path | str | None = None) -> StorageError:
        import errno as codes
        import os

        path = exc.filename
        if path is not None and root is not None:
            rel = os.path.relpath(os.fspath(path), os.fspath(root))
            path = rel if not rel.startswith("..") else path
        hint = None
        if exc.errno in (codes.ENOSPC, codes.EDQUOT):
            hint = "free some space and run again; `repropack clean` removes old runs and partial attempts"
        elif exc.errno == codes.EROFS:
            hint = "the project must be on a writable file system to run; check, status and logs only read"
        return cls(path, exc.strerror or str(exc), errno=exc.errno, hint=hint)
