"""The SLURM backend: job arrays through sbatch, status from results records and one squeue per poll.

Submitting: the jobs of one ``submit_many`` call are grouped (step, resources, runtime, options),
packed (``pack``), split at MaxArraySize and sent as one ``sbatch --array`` each
(:mod:`repropack.backends.slurm.batch`). An sbatch that fails transiently is retried with back-off;
before each retry ``squeue`` is asked for a job carrying the submission's token in its comment, so
a submission that went through although sbatch's answer was lost is taken, never repeated.

Polling: the results records the jobs write on the shared filesystem are read first; only members
still without one cost a ``squeue`` call (one for all of them, ``-t all`` so recently ended jobs
show their final state). A job that ended without a record is waited for ``latency_wait`` seconds
(NFS attribute caches), then classified from squeue's or ``sacct``'s final state: OUT_OF_MEMORY,
TIMEOUT and CANCELLED as such; NODE_FAIL, PREEMPTED, BOOT_FAIL or a job that vanished are
resubmitted under a new job id, at most ``MAX_RESUBMITS`` times, without counting against the
step's retries. ``sacct`` is optional: when it is disabled or its daemon down, squeue and the
records suffice.

Restart: every array is listed in ``.repropack/slurm/jobs.jsonl`` of the project, so a new runner's
``adopt`` finds the tasks and results files of jobs an earlier runner submitted.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repropack.backends import jobside
from repropack.backends.base import Backend, BackendContext, Job, JobHandle, JobState, JobStatus
from repropack.backends.slurm import batch as batching
from repropack.backends.slurm import cli
from repropack.backends.slurm.sif import sif_problem
from repropack.backends.slurm.status import ResultsFile, from_record, needs_resubmit, without_record
from repropack.errors import BackendError

LATENCY_WAIT = 10.0  # seconds an ended job's results may take to appear on a shared filesystem
UNSEEN_GRACE = 30.0  # seconds a just-submitted job may be missing from squeue
MAX_RESUBMITS = 3  # infrastructure failures of one instance resubmitted before it is lost
SBATCH_TRIES = 4
INDEX = Path(".repropack") / "slurm" / "jobs.jsonl"
JOBSIDE_SH = Path(__file__).with_name("jobside.sh")


@dataclass
class _Element:
    element_id: str  # "123_4"
    members: list[str]  # handle job ids, in pack order
    results: ResultsFile
    submitted: float
    log: str = ""
    seen: bool = False
    ended_at: float | None = None
    state: str = "PENDING"
    cancelled: bool = False


@dataclass
class _Member:
    handle: JobHandle
    element: str
    job: Job | None  # None when adopted (cannot be resubmitted from here)
    resubmits: int = 0
    final: JobStatus | None = None
    started: float | None = None
    held: dict[str, Any] | None = None  # a "stopped" record: its class waits for the job's final state


@dataclass
class _State:
    elements: dict[str, _Element] = field(default_factory=dict)
    members: dict[str, _Member] = field(default_factory=dict)
    envs: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class SlurmBackend(Backend):
    name = "slurm"
    # poll() itself only reads the results files (a stat per open element) ...
    poll_interval = 0.25
    poll_max_interval = 1.0
    # ... and asks squeue at most this often, backing off while nothing changes
    squeue_interval = 0.5
    squeue_max_interval = 5.0

    def __init__(self, context: BackendContext, *, latency_wait: float = LATENCY_WAIT):
        self.run_id = context.run_id
        self.root = context.root
        self.latency_wait = latency_wait
        self.s = _State()
        self._max_array: int | None = None
        self._sacct_off: str | None = None
        self._copied: set[Path] = set()
        self._squeue_next = 0.0
        self._squeue_gap = self.squeue_interval

    # -- submitting ------------------------------------------------------------------------
    def submit(self, job: Job) -> JobHandle:
        got = self.submit_many([job])[0]
        if isinstance(got, Exception):
            raise got
        return got

    def submit_many(self, jobs: Sequence[Job]) -> list[JobHandle | Exception]:
        out: dict[int, JobHandle | Exception] = {}
        position = {id(job): n for n, job in enumerate(jobs)}
        ready = []
        for n, job in enumerate(jobs):
            problem = sif_problem(job.image, job.project) if job.runtime == "apptainer" else None
            if problem:
                out[n] = BackendError(self.name, f"step {job.step or job.instance_id!r}: {problem}; nothing submitted",
                                      job_id=job.instance_id)
                continue
            try:
                job.script_path.write_text(job.script, encoding="utf-8")
                ready.append(job)
            except OSError as exc:
                out[n] = BackendError(self.name, f"cannot write {job.script_path}: {exc}", job_id=job.instance_id)
        for group in batching.plan(ready, self.max_array()) if ready else ():
            try:
                handles = self._submit_batch(group, resubmits=0)
            except (BackendError, OSError, ValueError) as exc:
                error = exc if isinstance(exc, (BackendError, OSError)) else BackendError(self.name, str(exc))
                for job in group.jobs:
                    out[position[id(job)]] = error
                continue
            for job, handle in zip(group.jobs, handles):
                out[position[id(job)]] = handle
        return [out[n] for n in range(len(jobs))]

    def max_array(self) -> int:
        if self._max_array is None:
            config = cli.parse_keyvalues(cli.run(["scontrol", "show", "config"]))
            # indices 0 .. MaxArraySize-1: that many elements in one array
            self._max_array = max(1, int(config.get("MaxArraySize", "1001") or 1001))
        return self._max_array

    def _submit_batch(self, group: batching.Batch, *, resubmits: int, old: Sequence[str] = ()) -> list[JobHandle]:
        project = group.jobs[0].project
        run_dir = project / ".repropack" / "runs" / group.jobs[0].run_id
        group.token = batching.make_token(group.jobs[0].run_id, group.jobs) + (f"r{resubmits}" if resubmits else "")
        side, side_sh = self._jobside(run_dir)
        written = batching.write_batch(group, run_id=group.jobs[0].run_id, run_dir=run_dir, jobside=side,
                                       jobside_sh=side_sh)
        self.s.envs.append(written.envs)
        self.s.envs.extend(written.envs.parent.glob(f"{group.token}.env-*.sh"))
        array = self._sbatch(written.script, group.token, project)
        self._index(project, array, written, run_dir)
        handles = []
        now = time.time()
        for index, element in enumerate(group.elements):
            eid = f"{array}_{index}"
            log = str(written.script.with_suffix(".out"))
            results = ResultsFile(str(run_dir / "results" / f"slurm-{eid}.jsonl"))
            el = self.s.elements[eid] = _Element(eid, [], results, now, log)
            for k, job in enumerate(element.jobs):
                job_id = old[len(handles)] if old else (eid if len(element.jobs) == 1 else f"{eid}#{k}")
                handle = JobHandle(self.name, job_id, job.instance_id, job.attempt)
                member = self.s.members.get(job_id)
                if member is None:
                    member = self.s.members[job_id] = _Member(handle, eid, job)
                member.element, member.resubmits = eid, resubmits
                el.members.append(job_id)
                handles.append(handle)
        return handles

    def _jobside(self, run_dir: Path) -> tuple[Path, Path]:
        """The job-side scripts, copied beside the run's records (the nodes see them there)."""
        target = run_dir / "slurm"
        side, side_sh = target / "jobside.py", target / "jobside.sh"
        if target not in self._copied:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(jobside.__file__, side)
            if JOBSIDE_SH.exists():
                shutil.copyfile(JOBSIDE_SH, side_sh)
            self._copied.add(target)
        return side, side_sh

    def _sbatch(self, script: Path, token: str, project: Path) -> str:
        delay = 1.0
        for attempt in range(1, SBATCH_TRIES + 1):
            try:
                text = cli.run(["sbatch", "--parsable", str(script)], env=None)
                return text.strip().split(";")[0]
            except cli.CommandFailed as exc:
                if not exc.transient or attempt == SBATCH_TRIES:
                    raise BackendError(self.name, f"sbatch refused {script.name}: {exc.detail}") from exc
            time.sleep(delay)
            delay *= 2
            found = self._find_token(token)
            if found:
                return found
        raise AssertionError("unreachable")

    def _find_token(self, token: str) -> str | None:
        try:
            entries = cli.parse_squeue(cli.run(["squeue", "-h", "--me", "-t", "all", "-o", cli.SQUEUE_FORMAT]))
        except cli.CommandFailed:
            return None
        return next((e.array_id for e in entries if e.comment.endswith(":" + token)), None)

    def _index(self, project: Path, array: str, written: batching.Written, run_dir: Path) -> None:
        path = project / INDEX
        path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"array": array, "tasks": str(written.tasks), "run_dir": str(run_dir),
                           "log": str(written.script.with_suffix(".out"))})
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    # -- polling ---------------------------------------------------------------------------
    def poll(self, handles: Sequence[JobHandle], wait: float = 0.0) -> dict[str, JobStatus]:
        members = [self.s.members[h.job_id] for h in handles if h.job_id in self.s.members]
        open_ = [m for m in members if m.final is None]
        for eid in {m.element for m in open_}:
            self._take_records(self.s.elements[eid])
        still = [m for m in open_ if m.final is None]
        if len(still) < len(open_):
            self._squeue_gap = self.squeue_interval  # things are ending: look closely
        if still and time.monotonic() >= self._squeue_next:
            self._from_queue(still)
            self._squeue_next = time.monotonic() + self._squeue_gap
            self._squeue_gap = min(self.squeue_max_interval, self._squeue_gap * 2)
        out: dict[str, JobStatus] = {}
        for m in members:
            if m.final is not None:
                out[m.handle.job_id] = m.final
            elif m.started is not None:
                out[m.handle.job_id] = JobStatus(m.handle, JobState.RUNNING, started=m.started)
        lost = [h for h in handles if h.job_id not in self.s.members]
        for h in lost:
            out[h.job_id] = without_record(h, None, h.job_id, why=" (not a job this backend knows)")
        return out

    def _take_records(self, el: _Element) -> None:
        el.results.read()
        for job_id in el.members:
            m = self.s.members.get(job_id)
            if m is None:
                continue  # forgotten
            record = el.results.records.get((m.handle.instance_id, m.handle.attempt))
            if record is None or m.final is not None or m.element != el.element_id:
                continue
            if record.get("failure") == "cancelled" and not el.cancelled:
                m.held = record  # stopped from outside: a node failure or preemption is resubmitted
            else:
                m.final = from_record(m.handle, record)

    def _from_queue(self, open_: list[_Member]) -> None:
        entries = {e.job_id: e for e in cli.parse_squeue(
            cli.run(["squeue", "-h", "-r", "--me", "-t", "all", "-o", cli.SQUEUE_FORMAT]))}
        now = time.time()
        ended: list[_Element] = []
        for eid in {m.element for m in open_}:
            el = self.s.elements[eid]
            # an array cancelled before any element started is listed once, under its own id
            entry = entries.get(eid) or entries.get(eid.partition("_")[0])
            if entry is not None:
                el.seen, el.state = True, entry.state
                if entry.state not in cli.TERMINAL:
                    if entry.state == "RUNNING":
                        for job_id in el.members:
                            m = self.s.members.get(job_id)
                            if m is not None and m.started is None:
                                m.started = now
                    continue
            elif not el.seen and now - el.submitted < UNSEEN_GRACE:
                continue
            else:
                el.state = "GONE"
            el.ended_at = el.ended_at or now
            self._take_records(el)
            if now - el.ended_at >= self.latency_wait:
                ended.append(el)
        if ended:
            self._classify(ended)

    def _classify(self, ended: list[_Element]) -> None:
        gone = [el.element_id for el in ended if el.state == "GONE"]
        acct = self._sacct(gone) if gone else {}
        resubmit: list[_Member] = []
        for el in ended:
            state = el.state if el.state != "GONE" else (acct[el.element_id].state if el.element_id in acct else None)
            if el.cancelled and state in (None, "GONE"):
                state = "CANCELLED"
            for job_id in el.members:
                m = self.s.members.get(job_id)
                if m is None or m.final is not None or m.element != el.element_id:
                    continue
                if m.held is not None and state in (None, "CANCELLED"):
                    m.final = from_record(m.handle, m.held)
                    continue
                if needs_resubmit(state) and m.job is not None and m.resubmits < MAX_RESUBMITS and not el.cancelled:
                    m.held = None
                    resubmit.append(m)
                    continue
                why = f" (sacct unavailable: {self._sacct_off})" if state is None and self._sacct_off else ""
                why += f"; see {el.log}" if el.log else ""
                m.final = without_record(m.handle, state, el.element_id, why=why)
        if resubmit:
            self._resubmit(resubmit)

    def _resubmit(self, members: list[_Member]) -> None:
        by_count: dict[int, list[_Member]] = {}
        for m in members:
            by_count.setdefault(m.resubmits + 1, []).append(m)
        for count, group in by_count.items():
            jobs = [m.job for m in group if m.job is not None]
            for b in batching.plan(jobs, self.max_array()):
                ids = [next(m.handle.job_id for m in group if m.job is job) for job in b.jobs]
                try:
                    self._submit_batch(b, resubmits=count, old=ids)
                except (BackendError, OSError) as exc:
                    for job_id in ids:
                        m = self.s.members[job_id]
                        m.final = without_record(m.handle, None, m.element, why=f"; resubmitting failed: {exc}")

    def _sacct(self, ids: list[str]) -> dict[str, cli.AcctEntry]:
        if self._sacct_off:
            return {}
        try:
            text = cli.run(["sacct", "-n", "-P", "-X", "-j", ",".join(ids), "-o", cli.SACCT_FORMAT], timeout=15)
        except cli.CommandFailed as exc:
            self._sacct_off = exc.detail.splitlines()[0] if exc.detail else "sacct failed"
            self.s.notes.append(f"sacct does not answer ({self._sacct_off}): relying on squeue and the results files")
            return {}
        return {e.job_id: e for e in cli.parse_sacct(text)}

    # -- the rest of the contract ----------------------------------------------------------
    def cancel(self, handles: Iterable[JobHandle], *, force: bool = False) -> None:
        ids = []
        for h in handles:
            m = self.s.members.get(h.job_id)
            if m is None or m.final is not None:
                continue
            el = self.s.elements[m.element]
            el.cancelled = True
            ids.append(el.element_id)
        if ids:
            ids = sorted(set(ids))
            cli.run(["scancel", *ids])  # a pending job ends at once; a running one gets SIGTERM
            if force:  # ... and then SIGKILL, without waiting out the cluster's KillWait
                try:
                    cli.run(["scancel", "--signal=KILL", "--full", *ids])
                except cli.CommandFailed:
                    pass  # those already gone

    def forget(self, handles: Iterable[JobHandle]) -> None:
        for h in handles:
            m = self.s.members.get(h.job_id)
            if m is not None and m.final is not None:
                del self.s.members[h.job_id]

    def adopt(self, handles: Sequence[JobHandle]) -> None:
        now = time.time()
        intents = [h for h in handles if h.job_id.startswith("?")]
        found = self._find_intents(intents) if intents else {}
        index = self._read_index()
        for h in handles:
            eid = found.get(h.job_id, h.job_id).partition("#")[0]
            array, _, task = eid.partition("_")
            where = index.get(array)
            if where is None:
                continue  # unknown: the next poll reports it lost
            el = self.s.elements.get(eid)
            if el is None:
                results = ResultsFile(str(Path(where["run_dir"]) / "results" / f"slurm-{eid}.jsonl"))
                el = self.s.elements[eid] = _Element(eid, [], results, now, where.get("log", ""), seen=False)
            el.members.append(h.job_id)
            self.s.members[h.job_id] = _Member(h, eid, None)

    def _find_intents(self, intents: Sequence[JobHandle]) -> dict[str, str]:
        """Jobs of handles journaled only as a submit intent (``?<run>/<instance>/<attempt>``: the runner
        died between sbatch and its start record): found by the run id in the job's comment and the
        instance in the array's tasks file, so they are adopted, never submitted twice."""
        if self.root is None:
            return {}
        try:
            entries = cli.parse_squeue(cli.run(["squeue", "-h", "--me", "-t", "all", "-o", cli.SQUEUE_FORMAT]))
        except cli.CommandFailed:
            return {}
        wanted = {}
        for h in intents:
            run_id = h.job_id[1:].partition("/")[0]
            wanted[(run_id, h.instance_id, h.attempt)] = h.job_id
        out: dict[str, str] = {}
        ours = {(e.array_id, e.comment) for e in entries
                if e.comment.startswith("repropack:") and e.workdir == str(self.root)}
        for array, comment in sorted(ours, key=lambda a: int(a[0]) if a[0].isdigit() else 0):  # the newest wins
            _, run_id, token = comment.split(":", 2)
            tasks = self.root / ".repropack" / "runs" / run_id / "slurm" / f"{token}.tasks.jsonl"
            try:
                lines = tasks.read_text(encoding="utf-8").splitlines()
            except OSError:
                continue
            for n, line in enumerate(lines):
                members = json.loads(line).get("members", [])
                for k, m in enumerate(members):
                    key = (run_id, m.get("instance"), m.get("attempt"))
                    if key in wanted:
                        eid = f"{array}_{n}"
                        out[wanted[key]] = eid if len(members) == 1 else f"{eid}#{k}"
                        self._index_known(array, run_id, tasks)
        return out

    def _index_known(self, array: str, run_id: str, tasks: Path) -> None:
        if self.root is not None and array not in self._read_index():
            run_dir = self.root / ".repropack" / "runs" / run_id
            line = json.dumps({"array": array, "tasks": str(tasks), "run_dir": str(run_dir),
                               "log": str(tasks.with_name(tasks.name.replace(".tasks.jsonl", ".out")))})
            with open(self.root / INDEX, "a", encoding="utf-8") as f:
                f.write(line + "\n")

    def _read_index(self) -> dict[str, dict[str, Any]]:
        if self.root is None:
            return {}
        out = {}
        try:
            lines = (self.root / INDEX).read_text(encoding="utf-8").splitlines()
        except OSError:
            return {}
        for line in lines:
            try:
                entry = json.loads(line)
                out[str(entry["array"])] = entry
            except (ValueError, KeyError, TypeError):
                continue
        return out

    @property
    def notes(self) -> list[str]:
        return list(self.s.notes)

    def close(self) -> None:
        """Remove the environment files of arrays that ended (a job still queued needs its file)."""
        if any(m.final is None for m in self.s.members.values()):
            return
        for path in self.s.envs:
            try:
                os.unlink(path)
            except OSError:
                pass
        self.s.envs.clear()
