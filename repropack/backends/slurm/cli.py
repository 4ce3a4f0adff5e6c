"""SLURM's commands (sbatch, squeue, sacct, scontrol, scancel): calls with time-outs, counted, and parsers.

The parsers are pure (unit tests feed them captured texts). Every call is counted by command name,
so a benchmark can print how many sbatch, squeue and sacct calls a run made.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from repropack.errors import BackendError

TIMEOUT = 30.0  # seconds a SLURM command may take before it is an error (slurmctld busy, network)

# sacct/squeue states that end a job
TERMINAL = frozenset({"COMPLETED", "FAILED", "OUT_OF_MEMORY", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
                      "CANCELLED", "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT", "REVOKED"})
# a job the infrastructure ended, not the step: resubmitted without counting against the step's retries
INFRASTRUCTURE = frozenset({"NODE_FAIL", "PREEMPTED", "BOOT_FAIL"})

calls: Counter[str] = Counter()  # command name -> calls made by this process


class CommandFailed(BackendError):
    def __init__(self, argv: Sequence[str], message: str, *, transient: bool):
        super().__init__("slurm", f"{argv[0]}: {message}")
        self.argv = list(argv)
        self.detail = message
        self.transient = transient


# sbatch's answers worth retrying: the controller is busy or briefly unreachable
_TRANSIENT = ("socket timed out", "unable to contact slurm controller", "connection refused",
              "temporarily unavailable", "try again", "resource temporarily", "slurm_receive_msg")


def run(argv: Sequence[str], *, timeout: float = TIMEOUT, env: dict[str, str] | None = None) -> str:
    """stdout of a SLURM command; CommandFailed (transient or not) when it fails or hangs."""
    calls[argv[0]] += 1
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, env=env)
    except FileNotFoundError as exc:
        raise CommandFailed(argv, f"not found on PATH ({exc})", transient=False) from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(argv, f"no answer within {timeout:g} s", transient=True) from exc
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
        lowered = message.lower()
        raise CommandFailed(argv, message, transient=any(t in lowered for t in _TRANSIENT))
    return done.stdout


# -- parsers -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class QueueEntry:
    job_id: str  # "123" or "123_4" (an array element)
    array_id: str  # "123"
    state: str  # PENDING, RUNNING, COMPLETED, OUT_OF_MEMORY, ...
    reason: str = ""
    start: str = ""
    name: str = ""
    comment: str = ""
    workdir: str = ""


SQUEUE_FORMAT = "%i|%F|%T|%r|%S|%j|%k|%Z"


def parse_squeue(text: str) -> list[QueueEntry]:
    """Lines of ``squeue -h -r -t all -o '%i|%F|%T|%r|%S|%j|%k|%Z'``; pending ranges expanded by -r."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split("|", 7)
        parts += [""] * (8 - len(parts))
        job_id, array_id, state, reason, start, name, comment, workdir = (p.strip() for p in parts)
        out.append(QueueEntry(job_id, array_id or job_id.split("_")[0], state.split()[0] if state else "",
                              reason, start, name, comment, workdir))
    return out


@dataclass(frozen=True)
class AcctEntry:
    job_id: str
    state: str  # first word: "CANCELLED by 0" -> CANCELLED
    exit_code: int | None
    signal: int | None
    workdir: str = ""
    comment: str = ""


SACCT_FORMAT = "JobID,State,ExitCode,WorkDir,Comment"


def parse_sacct(text: str) -> list[AcctEntry]:
    """Lines of ``sacct -n -P -X -o JobID,State,ExitCode,WorkDir,Comment`` (one per job or element)."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split("|", 4)
        parts += [""] * (5 - len(parts))
        job_id, state, code, workdir, comment = parts
        if "." in job_id:  # a step (batch, extern): -X should have left these out
            continue
        exit_code = sig = None
        left, _, right = code.partition(":")
        if left.strip().isdigit():
            exit_code = int(left)
        if right.strip().isdigit():
            sig = int(right) or None
        out.append(AcctEntry(job_id.strip(), state.split()[0] if state.strip() else "", exit_code, sig,
                             workdir.strip(), comment.strip()))
    return out


def parse_keyvalues(text: str) -> dict[str, str]:
    """``scontrol show config`` (``Key = value`` lines) or one record of ``scontrol show partition``
    (``Key=value`` words, values without spaces)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if " = " in line:
            key, _, value = line.partition(" = ")
            out[key.strip()] = value.strip()
            continue
        for word in line.split():
            key, sep, value = word.partition("=")
            if sep:
                out[key] = value
    return out


def parse_partitions(text: str) -> dict[str, dict[str, str]]:
    """``scontrol show partition -o``: one partition a line."""
    out = {}
    for line in text.splitlines():
        fields = parse_keyvalues(line)
        if "PartitionName" in fields:
            out[fields["PartitionName"]] = fields
    return out


def parse_time(text: str) -> int | None:
    """SLURM's time limits in seconds: ``UNLIMITED``/``INFINITE`` -> None; ``30``, ``1:00:00``,
    ``2-00:00:00``, ``1-12``."""
    text = text.strip()
    if not text or text.upper() in ("UNLIMITED", "INFINITE", "NONE", "N/A"):
        return None
    days = 0
    if "-" in text:
        head, _, text = text.partition("-")
        days = int(head)
        parts = [int(p) for p in text.split(":")]
        while len(parts) < 3:
            parts.append(0)  # D-H, D-H:M
        h, m, s = parts[:3]
    else:
        parts = [int(p) for p in text.split(":")]
        if len(parts) == 1:
            h, m, s = 0, parts[0], 0  # minutes
        elif len(parts) == 2:
            h, m, s = 0, parts[0], parts[1]
        else:
            h, m, s = parts[:3]
    return ((days * 24 + h) * 60 + m) * 60 + s


def parse_memory_mb(text: str) -> int | None:
    """``MaxMemPerNode=4000`` (MiB) or ``UNLIMITED`` -> bytes or None."""
    text = text.strip()
    if not text or not text[0].isdigit():
        return None
    digits = "".join(c for c in text if c.isdigit())
    return int(digits) << 20 if digits else None  # SLURM megabytes are MiB
