"""The runner: walks a DAG of step instances, skipping what is cached and running the rest.

Order of business for ``Runner.run()``: refuse what can never fit, take the
project's run lock, fetch and verify ``[data]``, create the profiles' backends
through the registry (the local one starts the run's supervisor, which cleans up
if this process is killed) and let them remove what a killed run left behind,
then loop: decide each ready instance (skip when its key and outputs
match the journal), start what fits, poll, finish attempts (outputs checked,
hashed and moved into place), retry with backoff, enforce time limits. Every
finished instance is journaled before its dependents start.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repropack.backends import registry
from repropack.backends.base import LABEL_PROJECT, LABEL_RUN, Capabilities
from repropack.errors import RunError, RunInterrupted, StorageError
from repropack.redact import Redactor, project_redactor
from repropack.run import rundir
from repropack.run.environments import Environments
from repropack.run.journal import JOURNAL_NAME, Journal, compact, load_state, needs_compaction
from repropack.run.keys import FileHashCache
from repropack.run.lock import ProjectLock
from repropack.run.pipes import pipe_units
from repropack.run.plan import Decision, Planner, dry_run, refuse_outside_links
from repropack.run.profiles import Profiles, keyed_env
from repropack.run.safepath import ProjectTree
from repropack.run.adopt import settle, unfinished
from repropack.run.context import BackendPool, RunContext
from repropack.run.fit import FitCheck
from repropack.run.scheduler import Scheduler
from repropack.run.state import InstanceResult, LoopState
from repropack.run.statefiles import check_state

if TYPE_CHECKING:
    from repropack.manifest.model import Manifest, Profile

JOURNAL = Path(".repropack") / JOURNAL_NAME


@dataclass
class RunOptions:
    profile: str | None = None
    jobs: int | None = None
    resume: bool = True
    keep_going: bool = False
    retry_backoff: float = 1.0  # seconds before the 2nd attempt, doubling each time
    max_backoff: float = 60.0
    offline: bool = False
    rehash: bool = False  # trust no recorded file stamp: hash every input, source and output again
    frozen: bool = False  # never fetch nor create an environment: what the lock names must be here already
    argv: Sequence[str] = ()
    redactor: Redactor | None = None  # masks secrets in records; default: the project's (no --param values)


@dataclass
class RunResult:
    run_id: str
    status: str  # ok | failed | interrupted
    results: dict[str, InstanceResult] = field(default_factory=dict)
    undeclared: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results.values() if r.status == status)

    @property
    def failed(self) -> list[InstanceResult]:
        return [r for r in self.results.values() if r.status == "failed"]


class Events:
    """Progress callbacks (the CLI draws them); the default ignores everything."""

    def planned(self, total: int) -> None: ...
    def started(self, instance_id: str, attempt: int) -> None: ...
    def finished(self, result: InstanceResult) -> None: ...
    def retrying(self, instance_id: str, attempt: int, failure: str, message: str, delay: float) -> None: ...
    def note(self, message: str) -> None: ...


def _provision(options: RunOptions, reporter: Any = None) -> Any:
    from repropack.lock.provision import Provision

    return Provision.from_flags(offline=options.offline, frozen=options.frozen, reporter=reporter)


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def project_label(root: Path) -> str:
    return hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:16]


def plan_run(manifest: Manifest, dag: Any, *, resume: bool = True, profile: str | None = None,
             rehash: bool = False) -> list[Decision]:
    """What ``run`` would do now and why (no lock taken, nothing written but the hash cache
    and, on first need, the project's env key)."""
    root = manifest.root
    hashes = FileHashCache(root, rehash=rehash)
    state = load_state(root / JOURNAL, last_run=False)
    refuse_outside_links(root, dag, (item.path for item in manifest.data.values()))
    try:
        keyed = keyed_env(root, Profiles(manifest, profile))
        decisions = dry_run(Planner(dag, state, hashes, Environments(manifest), resume=resume, keyed_env=keyed))
    except OSError as exc:  # an input that cannot be read, an env key that cannot be made
        raise StorageError.from_os(exc, root) from None
    try:
        hashes.save()
    except OSError:  # a read-only project can still be planned; the digests are made again next time
        pass
    return decisions


class Runner:
    def __init__(self, manifest: Manifest, dag: Any, options: RunOptions | None = None, events: Events | None = None):
        self.manifest = manifest
        self.dag = dag
        self.options = options or RunOptions()
        self.events = events or Events()
        self.root = manifest.root.resolve()
        self.run_id = new_run_id()
        self.environments = Environments(manifest, _provision(self.options))
        self.redactor = self.options.redactor or project_redactor(manifest)
        self.state = LoopState()  # what the loop changes; the signal handler sets its `stopping`
        self.backends: BackendPool | None = None  # made once the run's lock is held
        self._profiles = Profiles(manifest, self.options.profile)
        self._used: dict[str, Profile] = {}  # profile name -> the profiles the run's instances use
        self._caps: dict[str, Capabilities] = {}  # profile name -> what its backend declares
        self._labels: dict[str, str] | None = None
        self.units = pipe_units(dag)  # instances joined by pipes: they run together

    # -- set-up --------------------------------------------------------------------------
    def profile_for(self, inst: Any) -> Profile:
        return self._profiles.for_instance(inst)

    def _check_fit(self) -> Scheduler:
        """Refuse, before anything runs, what the profiles' backends cannot do or can never fit."""
        fit = FitCheck(self.dag, self.units, self.profile_for, self.options.jobs)
        scheduler = fit.check()
        self._used, self._caps = fit.profiles, fit.caps
        return scheduler

    def capabilities(self, profile: Profile) -> Capabilities:
        caps = self._caps.get(profile.name)
        if caps is None:
            caps = self._caps[profile.name] = registry.capabilities(profile)
        return caps

    def _check_inputs(self) -> None:
        """Inputs no step makes must exist before anything runs."""
        seen: set[str] = set()
        for inst in self.dag.instances.values():
            for path in inst.inputs:
                if path in seen or path in self.dag.producers:
                    continue
                seen.add(path)
                if not os.path.lexists(self.root / path) and path not in self._data_paths():
                    raise RunError(f"{inst.id}: missing input {path} (no step makes it and it is not in the project)")

    def _data_paths(self) -> set[str]:
        return {item.path for item in self.manifest.data.values()}

    def prepare_environments(self, reporter: Any = None) -> list[tuple[str, Path]]:
        """Fetch and create the host environments the selected steps use; returns those created now."""
        self._check_fit()  # a refused resource request comes before any download
        self.environments.provision = _provision(self.options, reporter)
        names = {i.step.environment for i in self.dag.instances.values() if self.profile_for(i).runtime == "host"}
        for name in sorted(n for n in names if n is not None):
            self.environments.host_prefix(name)
        return list(self.environments.created)

    # -- run -----------------------------------------------------------------------------
    def run(self) -> RunResult:
        scheduler = self._check_fit()
        check_state(self.root)  # a .repropack (or a state file in it) that is a link is refused, not followed
        refuse_outside_links(self.root, self.dag, self._data_paths())
        lock = ProjectLock(self.root, self.run_id)
        try:
            lock.acquire()
            try:
                return self._run_locked(scheduler)
            finally:
                self._record_provenance()
                lock.release()
        except OSError as exc:  # the runner's own files (disk full, read-only, permissions): one line
            raise StorageError.from_os(exc, self.root) from None

    def _run_locked(self, scheduler: Scheduler) -> RunResult:
        from repropack.run.data import fetch_data
        from repropack.run.execute import Executor

        hashes = FileHashCache(self.root, rehash=self.options.rehash)
        journal_path = self.root / JOURNAL
        state = load_state(journal_path, last_run=False)
        if needs_compaction(journal_path, len(state.done)):
            compact(journal_path, load_state(journal_path))
        where: dict[tuple[str, int], dict[str, Any]] = {}
        orphans = unfinished(journal_path, where)  # read before this run's own `run` record is written
        fetched = fetch_data(self.root, self.manifest.data.values(), hashes, offline=self.options.offline)
        self._check_inputs()
        journal = Journal(journal_path, self.run_id)
        try:
            records = self._start_records(journal, hashes)
        except BaseException:
            journal.close()
            raise
        planner = Planner(self.dag, state, hashes, self.environments, resume=self.options.resume,
                          keyed_env=keyed_env(self.root, self._profiles))
        runtimes: dict[str, frozenset[str]] = {}
        for p in self._used.values():
            runtimes[p.backend] = runtimes.get(p.backend, frozenset()) | {p.runtime}
        on: dict[str, tuple[Any, ...]] = {}
        for p in self._used.values():
            on[p.backend] = (*on.get(p.backend, ()), p)
        self.backends = BackendPool(self.run_id, runtimes, self.root, on)
        ctx = RunContext(root=self.root, run_id=self.run_id, dag=self.dag, units=self.units, options=self.options,
                         events=self.events, redactor=self.redactor, environments=self.environments,
                         profile_for=self.profile_for, capabilities=self.capabilities, labels=self.labels(),
                         backends=self.backends, data_paths=frozenset(self._data_paths()))
        executor = Executor(ctx, self.state, planner, journal, hashes, scheduler, records)
        executor.where = where
        previous = _install_signals(self._on_signal)
        status = "failed"
        try:
            self._cleanup_leftovers()
            settle(orphans, backends=self.backends, state=self.state, journal=journal, events=self.events,
                   succeeded=executor.adopted)
            self.events.planned(len(self.dag.instances))
            executor.loop()
            status = "interrupted" if self.state.interrupts else ("failed" if self.state.failed_any else "ok")
        finally:
            _restore_signals(previous)
            undeclared = _wind_down(executor, hashes, journal, status)
        result = RunResult(self.run_id, status, self.state.results, undeclared, fetched)
        if status == "interrupted":
            raise RunInterrupted(f"run {self.run_id} stopped; {result.count('done')} instance(s) finished and kept")
        return result

    def _record_provenance(self) -> None:
        """The run's crate and SBOMs (docs/provenance.md), also after a failure or an interruption."""
        if not rundir.run_root(self.root, self.run_id).is_dir():
            return  # refused before it started: there is no run to describe
        from repropack.provenance import record_run

        problem = record_run(self.root, self.run_id)
        if problem:
            self.events.note(problem)

    def _start_records(self, journal: Journal, hashes: FileHashCache) -> Any:
        """The run's directory, ``runs/latest``, ``run.json`` (format 2) and the journal's ``run``
        record; the records' writer, flushed before the journal each time (see records.writer)."""
        from repropack.run.records.recorder import Recorder, run_record

        run_dir = rundir.run_root(self.root, self.run_id)
        with ProjectTree(self.root) as tree:  # not through a link planted in .repropack
            tree.makedirs(os.path.relpath(run_dir, self.root))
        rundir.mark_latest(self.root, self.run_id)
        info = {"run": self.run_id, "start": time.time(), "argv": self.redactor.argv(self.options.argv),
                "host": socket.gethostname(),
                "profile": self.options.profile, "pid": os.getpid(), "instances": len(self.dag.instances),
                "masks": self.redactor.digests()}  # so logs/report can mask this run's --param secrets later
        records = Recorder(self.root, run_dir, hashes, redact=self.redactor)
        records.start(run_record(self.root, run_id=self.run_id, argv=info["argv"], profile=self.options.profile,
                                 started=info["start"], instances=len(self.dag.instances), masks=info["masks"]))
        journal.before_flush = records.flush
        journal.append("run", **{k: v for k, v in info.items() if k != "run"})
        journal.flush()
        return records

    def _cleanup_leftovers(self) -> None:
        assert self.backends is not None
        removed = []
        for profile in {p.backend: p for p in self._used.values()}.values():
            removed += self.backends.for_profile(profile).cleanup_leftovers(project_label(self.root))
        if removed:
            self.events.note(f"removed {len(removed)} container(s) left by an earlier run")

    def _on_signal(self, signum: int, frame: Any) -> None:
        state = self.state
        state.interrupts += 1
        state.stopping = True
        force = state.interrupts > 1
        if self.backends is not None:
            self.backends.cancel(state.active.values(), force=force)
        self.events.note("stopping: killing running steps" if force else "stopping (Ctrl-C again to kill at once)")

    def labels(self) -> Mapping[str, str]:
        if self._labels is None:
            self._labels = {LABEL_RUN: self.run_id, LABEL_PROJECT: project_label(self.root)}
        return self._labels


def _wind_down(executor: Any, hashes: FileHashCache, journal: Journal, status: str) -> list[str]:
    """Stop the steps and close the backends, save the hash cache, end and close the journal: every
    part even when one fails (a full disk), so nothing is left running or open; then the first error."""
    undeclared: list[str] = []
    parts = (executor.shutdown, lambda: executor.end_records(status), lambda: undeclared.extend(executor.undeclared()),
             hashes.save,
             lambda: journal.append("end", status=status, time=time.time()), journal.close)
    first: BaseException | None = None
    for part in parts:
        try:
            part()
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the rest is done
            first = first or exc
    if first is not None:
        raise first
    return undeclared


def _install_signals(handler: Callable[[int, Any], None]) -> dict[int, Any]:
    previous: dict[int, Any] = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: the caller handles stopping
        pass
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for sig, old in previous.items():
        signal.signal(sig, old)
