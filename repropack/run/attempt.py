"""One attempt of one instance: its script, surroundings and resources; then its outputs.

Outputs go to temporary paths in the attempt's slot folder (``scratch/<n>/out-<k>-<name>``)
and are moved into place with ``rename`` only after the step succeeded, every
declared output exists and every ``expect`` digest matched: a half-written
output is never where a later step or run would take it as done. A step whose
command names no ``{outputs}`` writes in place; its stale outputs are removed
before it runs so an old file cannot pass for a new one.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repropack.backends.base import JobResources
from repropack.run.checksums import sha256_files
from repropack.run.records.format import script_text
from repropack.run.safepath import ProjectTree, UnsafePath, remove_entry
from repropack.run.trees import tree_digest, tree_problem

FIXED_ENV = {
    "LC_ALL": "C.UTF-8",
    "LANG": "C.UTF-8",
    "TZ": "UTC",
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",  # no __pycache__ in the project (read-only in containers anyway)
}
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def resources_for(step: Any, attempt: int) -> JobResources:
    r = step.resources
    return JobResources(
        cpus=max(1, int(r.cpus)),
        memory=r.memory.at(attempt) if r.memory is not None else None,
        time=r.time.at(attempt) if r.time is not None else None,
        gpus=int(r.gpus or 0),
    )


def step_env(
    *,
    cpus: int,
    home: Path,
    tmp: Path,
    run_id: str,
    path: str,
    passthrough: Sequence[str] = (),
    caller: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The whole environment of a step: fixed values, nothing of the caller's unless passed."""
    caller = os.environ if caller is None else caller
    env = dict(FIXED_ENV)
    env.update({name: str(cpus) for name in THREAD_VARS})
    env.update({"HOME": str(home), "TMPDIR": str(tmp), "PATH": path, "REPROPACK_RUN_ID": run_id})
    for name in passthrough:
        if name in caller:
            env[name] = caller[name]
    return env


def host_path(prefix: Path | None, caller: Mapping[str, str] | None = None) -> str:
    """PATH on the host: the environment's bin first; without one, the host's own tools."""
    if prefix is not None:
        return f"{prefix / 'bin'}:{SYSTEM_PATH}"
    caller = os.environ if caller is None else caller
    return caller.get("PATH", SYSTEM_PATH)


def render_script(instance_id: str, attempt: int, command: str) -> str:
    # one template, shared with the records' reader (`logs --script` renders it again from the records)
    return script_text(instance_id, attempt, command)


def uses_output_placeholder(step: Any) -> bool:
    return "{outputs" in step.run


@dataclass
class OutputPlan:
    """Where each declared output is written (temp or final) and where it ends up."""

    final: tuple[str, ...]  # project-relative final paths (non-pipe)
    written: tuple[str, ...]  # project-relative paths the step writes (temp, or final in place)
    in_place: bool
    pipes: tuple[str, ...] = ()

    def prepare(self, tree: ProjectTree) -> None:
        """In place: the outputs' directories exist and no stale output is left to pass for a new one.

        Both through the project's descriptors: a link planted on the way is refused (UnsafePath),
        a link planted as the output itself is removed, never its target.
        """
        if self.in_place:
            for rel in self.written:
                fd, name = tree.parent(rel, create=True)
                try:
                    remove_entry(fd, name)
                finally:
                    os.close(fd)

    def writable_dirs(self, tree: ProjectTree) -> list[tuple[Path, int]]:
        """(real path, O_PATH descriptor) of each directory a container must write (in place: the
        outputs' parents), each reached without a link leading outside; the caller closes the
        descriptors once the mounts are made (the container checks its mounts against them)."""
        if not self.in_place:
            return []
        found: list[tuple[Path, int]] = []
        try:
            for rel in sorted({rel.rpartition("/")[0] for rel in self.written} - {""}):
                fd = tree.open_dir(rel, create=True)
                # the folder's real path (a link inside the project resolved): what is mounted
                found.append((Path(os.readlink(f"/proc/self/fd/{fd}")), fd))
        except BaseException:
            for _, fd in found:
                os.close(fd)
            raise
        return found


def mount_ids(own: tuple[Path, ...], mounts: list[tuple[Path, int]]) -> tuple[str, ...]:
    """The "dev:inode" of each writable folder as the runner checked it, for the container's own check.

    `own` (the attempt's slot folder) is the runner's, below .repropack/runs/<run>/scratch;
    a container cannot replace them (they are its mount points), so their last component is enough.
    The slot's HOME is among them: Apptainer mounts it on its own (``--home``).
    """
    ids = []
    for path in (*own, own[-1] / "home"):
        fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            ids.append(_dev_ino(fd))
        finally:
            os.close(fd)
    return (*ids, *(_dev_ino(fd) for _, fd in mounts))


def _dev_ino(fd: int) -> str:
    st = os.fstat(fd)
    return f"{st.st_dev}:{st.st_ino}"


def plan_outputs(inst: Any, staging_rel: str) -> OutputPlan:
    """Temporary paths sit flat in the attempt directory (no directory to make per output) and keep
    the output's file name, so tools that look at extensions see the same name."""
    final = tuple(p for p in inst.outputs if p not in inst.pipes)
    if not uses_output_placeholder(inst.step):
        return OutputPlan(final, final, True, tuple(inst.pipes))
    written = tuple(f"{staging_rel}/out-{n}-{p.rsplit('/', 1)[-1]}" for n, p in enumerate(final))
    return OutputPlan(final, written, False, tuple(inst.pipes))


def command_outputs(inst: Any, plan: OutputPlan, pipe_paths: Mapping[str, str]) -> list[str]:
    """The paths substituted for {outputs}, in the instance's declared order."""
    mapping = dict(zip(plan.final, plan.written))
    mapping.update(pipe_paths)
    return [mapping[p] for p in inst.outputs]


class OutputFailure(Exception):
    def __init__(self, failure: str, message: str):
        super().__init__(message)
        self.failure = failure
        self.message = message


def collect_outputs(
    tree: ProjectTree, plan: OutputPlan, expect: Mapping[str, str]
) -> dict[str, tuple[str, os.stat_result]]:
    """Check and hash the written outputs, then move them into place.

    Returns final path -> (sha256, stat); the stat, taken before the rename, still describes the
    file after it (rename keeps inode, size and mtime), so the hash cache needs no second stat.
    """
    root = tree.root
    stats: list[os.stat_result] = []
    missing = []
    base = f"{root}/"
    for final, written in zip(plan.final, plan.written):
        st = _lstat(tree, written)
        if st is None:
            missing.append(final)
        else:
            stats.append(st)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise OutputFailure("missing-output", f"the step exited 0 but did not write {missing[0]}{more}")
    _refuse_links(tree, plan, stats)
    is_dir = [stat.S_ISDIR(st.st_mode) for st in stats]
    files = [(w, st.st_size) for w, st, d in zip(plan.written, stats, is_dir) if not d]
    hexes = iter(sha256_files([base + w for w, _ in files], sizes=[size for _, size in files]))
    result: dict[str, tuple[str, os.stat_result]] = {}
    for (final, written), st, d in zip(zip(plan.final, plan.written), stats, is_dir):
        result[final] = (tree_digest(root / written) if d else next(hexes), st)
    for path, wanted in expect.items():
        want = wanted.split(":", 1)[1] if ":" in wanted else wanted
        got = result[path][0] if path in result else None
        if got is not None and got != want.lower():
            raise OutputFailure("expect", f"{path}: expected sha256:{want}, got sha256:{got}")
    if not plan.in_place:
        for final, d in zip(plan.final, is_dir):
            if not d and os.path.isdir(base + final) and not os.path.islink(base + final):
                # Never delete a folder someone put where a file output goes: say so instead.
                raise OutputFailure("output-conflict", f"{final} is a folder, where the step's file output goes; "
                                                       "move or remove it and run again")
        for final, written, d in zip(plan.final, plan.written, is_dir):
            try:
                _move(tree, written, final, is_dir=d)
            except UnsafePath as exc:
                raise OutputFailure("unsafe-path", str(exc)) from None
    return result


def _refuse_links(tree: ProjectTree, plan: OutputPlan, stats: list[os.stat_result]) -> None:
    """An output is a regular file or a folder whose links stay inside it; checked before anything
    is hashed (a link's target is never read) or moved. What a step left in place is removed."""
    root = tree.root
    for final, written, st in zip(plan.final, plan.written, stats):
        problem = None
        if stat.S_ISLNK(st.st_mode):
            problem = f"{final} is a symbolic link (to {os.readlink(root / written)!r}); an output must be a file " \
                "or a folder, and repropack does not follow links"
        elif stat.S_ISDIR(st.st_mode):
            problem = tree_problem(root / written, final)
        elif not stat.S_ISREG(st.st_mode):
            raise OutputFailure("output-type", f"{final} is not a regular file or a folder")
        if problem:
            if plan.in_place:
                tree.remove(written)
            raise OutputFailure("output-link", problem)


def _lstat(tree: ProjectTree, rel: str) -> os.stat_result | None:
    """The written output itself; a link planted on the way to it (say, the attempt folder
    swapped for one) fails the attempt."""
    try:
        return tree.lstat(rel)
    except UnsafePath as exc:
        raise OutputFailure("unsafe-path", str(exc)) from None


def _move(tree: ProjectTree, src: str, dst: str, *, is_dir: bool) -> None:
    """Rename src onto dst through verified descriptors; a folder already at dst is set aside first."""
    if is_dir:
        old = tree.lstat(dst)
        if old is not None and stat.S_ISDIR(old.st_mode):
            head, _, name = dst.rpartition("/")
            aside = f"{head}/.{name}.old-{os.getpid()}" if head else f".{name}.old-{os.getpid()}"
            tree.rename(dst, aside)
            tree.rename(src, dst)
            tree.remove(aside)
            return
    tree.rename(src, dst)
