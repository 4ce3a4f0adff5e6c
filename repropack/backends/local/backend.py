"""The local backend: runs attempts on this machine with the host, Docker or Apptainer runtime.

Host and Apptainer attempts are child processes, each in its own session (so
a terminal's Ctrl-C reaches the runner, which stops them in order) and watched
through pidfds. Docker attempts are containers run through the docker SDK; one
thread per container waits for it and wakes the poller. What holds a step's
processes and measures them -- a cgroup per step, or the subreaper's tracking --
is :class:`~repropack.backends.local.contain.Containment`. Every process group and
container is announced to the run's :class:`~repropack.backends.local.supervisor.Supervisor`, which the
backend starts when it is the runner's (``supervise=True``) and stops in :meth:`LocalBackend.close`.
"""

from __future__ import annotations

import functools
import os
import queue
import selectors
import shutil
import signal
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from repropack.backends.local import cgroups
from repropack.backends.base import (
    CANCELLED,
    EXIT,
    LOST,
    OOM,
    SIGNAL,
    Backend,
    Capabilities,
    Job,
    JobHandle,
    JobState,
    JobStatus,
)
from repropack.backends.local.contain import Containment
from repropack.backends.runtimes import (
    MOUNT_MISMATCH,
    apptainer_argv,
    apptainer_env,
    docker_run_kwargs,
    host_argv,
)
from repropack import docker_api
from repropack.errors import BackendError
from repropack.run.rundir import SCRIPT, write_file
from repropack.backends.local.supervisor import LABEL_PROJECT, Supervisor, remove_containers

DOCKER_TIMEOUT = 60  # seconds an engine call may take before it is an error
# Python ignores these; an ignored signal stays ignored across exec, so without a reset
# `yes | head -1` fails under pipefail (yes gets EPIPE instead of dying quietly of SIGPIPE).
_DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)


@dataclass
class _Proc:
    handle: JobHandle
    job: Job
    pid: int
    pidfd: int
    start: float
    start_wall: float
    group: Any = None
    cancelled: bool = False


@dataclass
class _Container:
    handle: JobHandle
    job: Job
    container: Any
    start: float
    start_wall: float
    group: Any = None
    cancelled: bool = False
    stop: threading.Event = field(default_factory=threading.Event)


def capabilities(profile: Any) -> Capabilities:
    """This machine, lowered by the profile's caps; memory is enforced by Docker and by the step's cgroup."""
    from repropack.backends.machine import machine_cpus, machine_gpus, machine_memory

    cpus, memory = machine_cpus(), machine_memory()
    enforced = profile.runtime == "docker" or (profile.runtime in ("host", "apptainer") and cgroups.detect() is not None)
    return Capabilities(shared_filesystem=True, enforces_time=False, enforces_memory=enforced, co_schedules=True,
                        survives_runner=False, cpus=min(cpus, profile.cpus or cpus),
                        memory=min(memory, profile.memory or memory), gpus=machine_gpus())


class LocalBackend(Backend):
    name = "local"
    # poll blocks in select() until a pidfd or a container's waiter wakes it: the cadence is only a cap
    poll_interval = poll_max_interval = 0.5

    def __init__(self, *, run_id: str, supervise: bool = False, limit_memory: bool = True,
                 runtimes: frozenset[str] | None = None):
        self.run_id = run_id
        self.supervisor: Supervisor | None = None
        if supervise:
            self.supervisor = Supervisor(run_id, containers=runtimes is None or "docker" in runtimes)
            self.supervisor.start()
        supervisor = self.supervisor
        self.runtimes = runtimes  # None: any (cleanup_leftovers looks for containers only if docker is used)
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._procs: dict[str, _Proc] = {}
        self._containers: dict[str, _Container] = {}
        self._finished: dict[str, JobStatus] = {}
        self._docker_done: queue.SimpleQueue[tuple[str, JobStatus]] = queue.SimpleQueue()
        self._docker: Any = None
        self.contain = Containment(run_id, supervisor=supervisor, use_cgroups=limit_memory)
        self._cwd: str | None = None
        self._home_cwd: str | None = None

    # -- submit ---------------------------------------------------------------------------
    def submit(self, job: Job) -> JobHandle:
        write_file(f"{job.attempt_dir}/{SCRIPT}", job.script.encode("utf-8"))
        if job.runtime == "docker":
            return self._submit_docker(job)
        return self._submit_process(job)

    def _submit_process(self, job: Job) -> JobHandle:
        out = os.O_WRONLY | os.O_CREAT | os.O_TRUNC  # no O_CLOEXEC: these become the step's fds 1 and 2
        if job.runtime == "apptainer":
            argv, env = apptainer_argv(job), apptainer_env(job)
            streams = [(os.POSIX_SPAWN_OPEN, 1, str(job.attempt_dir / "runtime.log"), out, 0o644),
                       (os.POSIX_SPAWN_DUP2, 1, 2)]
        else:
            argv, env = host_argv(job), dict(job.env)
            streams = [(os.POSIX_SPAWN_OPEN, 1, str(job.stdout_path), out, 0o644),
                       (os.POSIX_SPAWN_OPEN, 2, str(job.stderr_path), out, 0o644)]
        try:
            group, argv, env = self.contain.prepare(argv, env, job.resources.memory, bash=job.runtime != "apptainer")
        except OSError as exc:
            raise BackendError(self.name, f"cannot make a cgroup for the step: {exc}", job_id=job.instance_id) from exc
        self._enter(job.project)
        try:
            # posix_spawn (vfork) costs a fraction of fork+exec; the child opens its own streams.
            pid = os.posix_spawn(
                _executable(argv[0]), argv, env,
                file_actions=[(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0), *streams],
                setsid=True,
                setsigdef=_DEFAULT_SIGNALS,
            )
        except OSError as exc:
            self.contain.failed_to_start(group)
            raise BackendError(self.name, f"cannot start {argv[0]}: {exc}", job_id=job.instance_id) from exc
        if self.supervisor:
            self.supervisor.add_group(pid)
        self.contain.started(pid, _marks(job))
        pidfd = os.pidfd_open(pid)
        now = time.time()
        handle = JobHandle(self.name, str(pid), job.instance_id, job.attempt, started=now)
        proc = _Proc(handle, job, pid, pidfd, time.monotonic(), now, group)
        self._selector.register(pidfd, selectors.EVENT_READ, proc)
        self._procs[handle.job_id] = proc
        return handle

    def _enter(self, project: Any) -> None:
        """Steps run in the project directory; posix_spawn has no cwd, so the runner moves there."""
        target = str(project)
        if self._cwd != target:
            if self._home_cwd is None:
                self._home_cwd = os.getcwd()
            os.chdir(target)
            self._cwd = target

    def _client(self) -> Any:
        if self._docker is None:
            self._docker = docker_api.connect(DOCKER_TIMEOUT)
        return self._docker

    def _submit_docker(self, job: Job) -> JobHandle:
        client = self._client()
        kwargs = docker_run_kwargs(job, uid=os.getuid(), gid=os.getgid())
        group, parent = self.contain.docker_parent()
        if parent:
            kwargs["cgroup_parent"] = parent  # the container's figures stay readable after it is gone
        for name in ("stdout", "stderr"):  # created here so they belong to the invoking user
            (job.attempt_dir / name).touch()
        try:
            container = client.containers.run(**kwargs)
        except Exception as exc:
            self.contain.docker_done(group)
            raise BackendError("docker", f"cannot start a container for {job.instance_id}: {exc}") from exc
        if self.supervisor:
            self.supervisor.add_container(container.id)
        now = time.time()
        handle = JobHandle(self.name, container.id[:12], job.instance_id, job.attempt, started=now)
        entry = _Container(handle, job, container, time.monotonic(), now, group)
        self._containers[handle.job_id] = entry
        threading.Thread(target=self._wait_container, args=(entry,), daemon=True).start()
        return handle

    # -- poll -----------------------------------------------------------------------------
    def poll(self, handles: Sequence[JobHandle], wait: float = 0.0) -> dict[str, JobStatus]:
        if self.supervisor is not None:
            self.supervisor.flush()  # what was started or ended since the last poll (batched)
        wanted = {h.job_id for h in handles}
        if any(j in self._finished for j in wanted):
            wait = 0.0
        deadline = time.monotonic() + wait
        while True:  # without cgroups, wake for the process samples too
            now = time.monotonic()
            events = self._selector.select(timeout=self.contain.wait(now, max(0.0, deadline - now)))
            self.contain.tick(time.monotonic())
            if events or time.monotonic() >= deadline:
                break
        for key, _ in events:
            if key.data is None:
                try:
                    while os.read(self._wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
            else:
                self._reap(key.data)
        while True:
            try:
                job_id, status = self._docker_done.get_nowait()
            except queue.Empty:
                break
            entry = self._containers.get(job_id)
            if entry is not None:
                self.contain.docker_done(entry.group)
                entry.group = None
            self._finished[job_id] = status
        return {j: self._finished[j] for j in wanted if j in self._finished}

    def _reap(self, proc: _Proc) -> None:
        try:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere: the status is lost, the job is not
            pid, status, usage = proc.pid, None, None
        if pid == 0:
            return  # pidfd readiness without an exit yet (should not happen; harmless)
        self._selector.unregister(proc.pidfd)
        os.close(proc.pidfd)
        if self.supervisor:
            self.supervisor.remove_group(proc.pid)
        del self._procs[proc.handle.job_id]
        end = time.monotonic()
        metrics: dict[str, Any] = {
            "start": proc.start_wall,
            "end": proc.start_wall + (end - proc.start),
            "wall": round(end - proc.start, 6),
        }
        figures, oom = self.contain.finished(proc.group, proc.pid, usage)
        metrics.update(figures)
        self._finished[proc.handle.job_id] = _status(proc.handle, status, oom, proc.cancelled, metrics,
                                                     guarded=bool(proc.job.writable_ids))

    def _wait_container(self, entry: _Container) -> None:
        status = self._container_result(entry)
        self._docker_done.put((entry.handle.job_id, status))
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass

    def _container_result(self, entry: _Container) -> JobStatus:
        container = entry.container
        while True:
            try:
                container.wait(timeout=DOCKER_TIMEOUT)
                container.reload()
                break
            except Exception as exc:
                if entry.stop.is_set():
                    return JobStatus(entry.handle, JobState.FAILED, failure=CANCELLED, message=str(exc))
                try:
                    container.reload()
                except Exception as gone:
                    return JobStatus(entry.handle, JobState.FAILED, failure=LOST, message=f"docker: {gone}")
                if container.status in ("exited", "dead"):
                    break
        state = container.attrs.get("State", {})
        end = time.monotonic()
        metrics = {"start": entry.start_wall, "end": entry.start_wall + (end - entry.start), "wall": round(end - entry.start, 6)}
        code = state.get("ExitCode")
        try:
            container.remove(force=True)
        except Exception:
            pass
        metrics.update(self.contain.docker_measure(entry.group))  # the group outlives the container
        if self.supervisor:
            self.supervisor.remove_container(container.id)
        return _status(entry.handle, None, bool(state.get("OOMKilled")), entry.cancelled, metrics, code=code,
                       guarded=bool(entry.job.writable_ids))

    # -- cancel ---------------------------------------------------------------------------
    def cancel(self, handles: Iterable[JobHandle], *, force: bool = False) -> None:
        sig = signal.SIGKILL if force else signal.SIGTERM
        for handle in handles:
            proc = self._procs.get(handle.job_id)
            if proc is not None:
                if _exited(proc.pid):
                    # it ended on its own before the cancel (a pipe partner failing at the same
                    # moment): it keeps its own exit status instead of passing for cancelled
                    continue
                proc.cancelled = True
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass
                continue
            entry = self._containers.get(handle.job_id)
            if entry is not None:
                entry.cancelled = True
                entry.stop.set()
                try:
                    entry.container.kill(signal="SIGKILL" if force else "SIGTERM")
                except Exception:
                    pass

    def adopt(self, handles: Sequence[JobHandle]) -> None:
        """A local job dies with the runner that started it (its supervisor kills it): each is lost."""
        for handle in handles:
            if handle.job_id not in self._procs and handle.job_id not in self._containers:
                self._finished[handle.job_id] = JobStatus(
                    handle, JobState.FAILED, failure=LOST,
                    message="the runner that started it ended; local jobs do not outlive their runner")

    def forget(self, handles: Iterable[JobHandle]) -> None:
        for handle in handles:
            self._finished.pop(handle.job_id, None)
            self._containers.pop(handle.job_id, None)

    def cleanup_leftovers(self, project_label: str) -> list[str]:
        """Containers of this project left by a run that was killed (we hold the run lock)."""
        if self.runtimes is not None and "docker" not in self.runtimes:
            return []
        return remove_containers(project_label, label=LABEL_PROJECT)

    def close(self) -> None:
        self.contain.close()
        if self._home_cwd is not None:
            os.chdir(self._home_cwd)
            self._home_cwd = self._cwd = None
        if self._docker is not None:
            self._docker.close()
            self._docker = None
        if self.supervisor is not None:
            self.supervisor.close()
            self.supervisor = None


@functools.lru_cache(maxsize=8)
def _executable(name: str) -> str:
    """Resolve once: posix_spawnp would try every PATH entry on every spawn."""
    found = shutil.which(name)
    if found is None:
        raise BackendError("local", f"`{name}` is not on PATH")
    return found


def _marks(job: Job) -> frozenset[str]:
    marks = {str(job.stdout_path), str(job.stderr_path)}
    marks |= {f"{key}={job.env[key]}" for key in ("HOME", "TMPDIR") if job.env.get(key)}
    return frozenset(marks)


def _exited(pid: int) -> bool:
    """Has the child ended (not yet reaped)? WNOWAIT leaves it for the poller to reap."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _status(
    handle: JobHandle,
    wait_status: int | None,
    oom: bool,
    cancelled: bool,
    metrics: dict[str, Any],
    *,
    code: int | None = None,
    guarded: bool = False,
) -> JobStatus:
    if wait_status is None and code is None:
        return JobStatus(handle, JobState.FAILED, failure=LOST, message="the job vanished", metrics=metrics)
    if code is None:
        code = os.waitstatus_to_exitcode(wait_status)  # type: ignore[arg-type]
        code = 128 - code if code < 0 else code  # shell convention for a kill by signal N
    # bash reports a child killed by signal N as 128+N, like the shell convention above
    sig = code - 128 if 128 < code <= 128 + 64 else None
    metrics["exit_code"] = code
    if code == 0 and not oom:
        return JobStatus(handle, JobState.SUCCEEDED, exit_code=0, metrics=metrics)
    if oom:
        failure, message = OOM, "out of memory (killed by the memory limit)"
    elif cancelled:
        failure, message = CANCELLED, "stopped"
    elif sig:
        failure, message = SIGNAL, f"killed by signal {_signame(sig)}"
    elif guarded and code == MOUNT_MISMATCH:
        failure = "unsafe-mount"
        message = (f"exit code {code}: a writable mount was not the folder the runner had checked (a link "
                   "swapped in on its path?); the step did not run")
    else:
        failure, message = EXIT, f"exit code {code}"
    return JobStatus(handle, JobState.FAILED, exit_code=code, signal=sig, failure=failure, message=message, metrics=metrics)


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)
