"""Resume after a crash: the jobs an earlier runner submitted and never saw end are adopted, not forgotten.

A run that has no ``end`` record in the journal was killed. Each of its attempts with a
``submit`` intent or a ``start`` record, but no record of its end, may still exist on its
backend: it is handed to that backend's ``adopt`` and polled (the backend's cadence, poll
errors lost after ``POLL_RETRIES``, Ctrl-C cancels it) until it ends, and its end is journaled
as an ``adopted`` record before anything of this run is submitted, so the same attempt never
runs twice at once. A backend whose jobs die with their runner (local) reports them lost at its
next poll. An adopted job that succeeded is collected when its instance comes up (see
:func:`collect`): its outputs, staged in the killed run's slot, are checked against the digests
its job side reported and published, so it is not run again; else the instance is planned as
usual (it runs again unless it is up to date).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from repropack.backends.base import JobHandle, JobState, JobStatus
from repropack.run.journal import read_records
from repropack.run.polling import Poller
from repropack.run.statefiles import open_state
from repropack.run.state import Active, LoopState

_PENDING_KINDS = ("submit", "start", "attempt", "done", "failed")


def unfinished(journal: Path, where: dict[tuple[str, int], dict[str, Any]] | None = None
               ) -> dict[str, list[JobHandle]]:
    """Backend name -> handles of the last run's attempts that began and have no end, if that run was killed.
    ``where`` gets, for each of them that started, its ``start`` record's slot and key."""
    if _last_run_ended(journal):
        return {}
    last = None
    for record in read_records(journal, kinds=("run",)):  # only these lines are parsed
        last = record["run"]
    if last is None:
        return {}
    pending: dict[tuple[str, int], JobHandle] = {}
    for record in read_records(journal, kinds=_PENDING_KINDS):
        if record["run"] != last:
            continue
        kind, iid = record["t"], record["id"]
        if kind in ("submit", "start"):
            attempt = int(record.get("attempt", 1))
            # an intent alone never learnt its job id: the backend may find it by its labels, else it is lost
            job = record.get("job") or f"?{last}/{iid}/{attempt}"
            pending[(iid, attempt)] = JobHandle(str(record.get("backend", "")), str(job), iid, attempt)
            if where is not None and kind == "start":
                where[(iid, attempt)] = {"slot": record.get("slot"), "key": record.get("key")}
        elif kind == "attempt":
            pending.pop((iid, int(record.get("attempt", 1))), None)
        else:  # done or failed: the instance's end
            for key in [k for k in pending if k[0] == iid]:
                del pending[key]
    out: dict[str, list[JobHandle]] = {}
    for handle in pending.values():
        out.setdefault(handle.backend, []).append(handle)
    return out


def _last_run_ended(journal: Path, chunk: int = 1 << 16) -> bool:
    """Is the journal's last `run` or `end` record an `end`? Read from the tail: a run that ended
    (nearly always) costs a few blocks, not a pass over the whole journal."""
    try:
        fd = open_state(journal, os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        pos, carry = os.fstat(fd).st_size, b""
        while pos > 0:
            start = max(0, pos - chunk)
            data = os.pread(fd, pos - start, start) + carry
            lines = data.split(b"\n")
            carry = lines[0] if start > 0 else b""  # a line cut by the chunk's start: read with the next
            for line in reversed(lines[1:] if start > 0 else lines):
                if b'"t":"end"' in line:
                    return True
                if b'"t":"run"' in line:
                    return False
            pos = start
        return True  # no run at all
    finally:
        os.close(fd)


def settle(orphans: dict[str, list[JobHandle]], *, backends: Any, state: LoopState, journal: Any,
           events: Any, succeeded: dict[str, tuple[Active, JobStatus]] | None = None) -> int:
    """Adopt the orphans on the backends this run uses and wait for each to end; returns how many.
    ``succeeded`` gets instance -> (its Active, its status) for each that succeeded."""
    if not orphans:
        return 0
    known = {name: backends.for_name(name) for name in orphans if backends.uses(name)}
    for name, handles in orphans.items():
        if name not in known:
            events.note(f"cannot adopt {len(handles)} job(s) of the killed run on backend {name!r}: "
                        "no profile of this run uses it")
    for name, backend in known.items():
        backend.adopt(orphans[name])
        for handle in orphans[name]:
            state.active[handle.job_id] = Active(None, handle.attempt, handle, backend, time.monotonic(), None,
                                                 None, None, None, "")
    count = len(state.active)
    if count:
        events.note(f"adopting {count} job(s) a killed run left; waiting for them to end")

    def ended(active: Active, status: JobStatus) -> None:
        del state.active[active.handle.job_id]
        journal.append("adopted", id=active.handle.instance_id, attempt=active.attempt, job=active.handle.job_id,
                       backend=active.backend.name, status=status.state.value, failure=status.failure,
                       message=status.message, time=time.time())
        if succeeded is not None and status.state is JobState.SUCCEEDED:
            succeeded[active.handle.instance_id] = (active, status)

    poller = Poller(state, events, ended)
    while state.active:
        poller.poll()
        journal.flush()
    return count


def collect(builder: Any, finisher: Any, adopted: tuple[Active, JobStatus], where: dict[str, Any] | None,
            parts: Any) -> bool:
    """Collect a killed run's adopted success as this run's attempt, when its instance is to run: only if
    that run's key is this run's (the inputs did not change since) and its outputs check out."""
    active, status = adopted
    if not where or not where.get("slot") or where.get("key") != getattr(parts, "key", None):
        return False
    rebuilt = builder.adopted(active.handle.instance_id, active.attempt, Path(builder.ctx.root) / where["slot"],
                              active.handle, active.backend)
    return bool(finisher.adopted(rebuilt, status))
