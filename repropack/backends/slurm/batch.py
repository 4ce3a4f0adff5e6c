"""From a list of Jobs to sbatch scripts: group by step and resources, pack, split at MaxArraySize.

Pure except for :func:`write_batch` (which writes the kept files): the grouping and the rendered
text are unit-tested. One *array* is one sbatch call; each array *element* runs one or more members
(packed instances) one after the other through the job-side script (:mod:`repropack.backends.jobside`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shlex
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repropack.backends.base import Job, JobResources
from repropack.backends.resources import slurm_flags
from repropack.backends.runtimes import apptainer_argv, apptainer_env, host_argv

PACK_DEFAULT_TIME = 60  # seconds a member without a declared time counts for when `pack` is a duration
DIRECTIVE_OPTIONS = ("partition", "account", "qos", "reservation", "constraint")


@dataclass
class Element:
    jobs: list[Job]
    time: int | None  # the element's limit: the sum of its members' (None: no member declared one)


@dataclass
class Batch:
    """One sbatch call: an array of elements of one step with one set of resources and options."""

    step: str
    resources: JobResources
    options: Mapping[str, Any]
    elements: list[Element] = field(default_factory=list)
    token: str = ""  # unique per submission: in the job's comment, so a retried sbatch is found, not repeated

    @property
    def jobs(self) -> list[Job]:
        return [job for element in self.elements for job in element.jobs]


def pack_size(options: Mapping[str, Any], time: int | None) -> int:
    """Members per element from the profile's ``pack``: a count, or a duration filled with declared times."""
    pack = options.get("pack")
    if pack is None:
        return 1
    if isinstance(pack, int):
        return max(1, pack)
    return max(1, int(str(pack).rstrip("s")) // (time or PACK_DEFAULT_TIME))  # a duration: "600s"


def plan(jobs: Sequence[Job], max_array: int) -> list[Batch]:
    """Group jobs ready together into arrays (same step, resources, runtime, options), packed and split."""
    groups: dict[Any, list[Job]] = {}
    for job in jobs:
        key = (job.step, job.resources, job.runtime, job.image, _frozen(job.options))
        groups.setdefault(key, []).append(job)
    batches = []
    for (step, resources, _, _, _), members in groups.items():
        options = members[0].options
        size = pack_size(options, resources.time)
        elements = [members[i:i + size] for i in range(0, len(members), size)]
        for start in range(0, len(elements), max(1, max_array)):
            chunk = elements[start:start + max(1, max_array)]
            batches.append(Batch(step, resources, options, [
                Element(list(e), sum(j.resources.time for j in e) if resources.time else None) for e in chunk]))
    return batches


def _frozen(options: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in options.items()))


def member_spec(job: Job, env_key: str, pack_index: int) -> dict[str, Any]:
    """What the job-side script needs to run one member (no environment values: those are in the envs file)."""
    argv = apptainer_argv(job) if job.runtime == "apptainer" else host_argv(job)
    return {"instance": job.instance_id, "attempt": job.attempt, "argv": argv, "cwd": str(job.project),
            "env": env_key, "stdout": str(job.stdout_path), "stderr": str(job.stderr_path),
            # inside a container the step's own shell writes its streams into the attempt folder
            "redirect": job.runtime != "apptainer", "time": job.resources.time, "outputs": [list(pair) for pair in job.outputs],
            "pack_index": pack_index, "requested": job.resources.to_record(), "staging": {"script": str(job.script_path), "runtime": job.runtime,
                                                  "image": job.image}}


def member_env(job: Job) -> dict[str, str]:
    return apptainer_env(job) if job.runtime == "apptainer" else dict(job.env)


def sbatch_directives(batch: Batch) -> list[str]:
    """The #SBATCH lines of resources and the profile's options, each value quoted for the line."""
    r = batch.resources
    element_time = max((e.time or 0) for e in batch.elements) or None
    flags = slurm_flags(JobResources(cpus=r.cpus, memory=r.memory, time=element_time, gpus=r.gpus))
    for option in DIRECTIVE_OPTIONS:
        value = batch.options.get(option)
        if value:
            flags.append(f"--{option}={value}")
    flags += list(batch.options.get("sbatch-args") or ())
    return [f"#SBATCH {_directive_safe(flag)}" for flag in flags]


def _directive_safe(flag: str) -> str:
    if "\n" in flag or "\r" in flag:
        raise ValueError(f"an sbatch option holds a line break: {flag!r}")
    return flag


def array_spec(count: int, throttle: Any) -> str:
    spec = f"0-{count - 1}" if count > 1 else "0"
    return f"{spec}%{int(throttle)}" if throttle else spec


def job_name(step: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in step)[:60]
    return f"rp-{safe}"


def make_token(run_id: str, jobs: Sequence[Job]) -> str:
    h = hashlib.sha256(run_id.encode())
    for job in jobs:
        h.update(f"\0{job.instance_id}\0{job.attempt}".encode())
    return h.hexdigest()[:16]


def render(template: str, values: Mapping[str, str]) -> str:
    return string.Template(template).substitute(values)


def template_text() -> str:
    """``templates/slurm.sbatch`` in a checkout, ``repropack/_templates`` in an installed wheel."""
    here = Path(__file__).resolve().parent.parent.parent
    for candidate in (here / "_templates", here.parent / "templates"):
        path = candidate / "slurm.sbatch"
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise FileNotFoundError("repropack's templates/slurm.sbatch is missing from this installation")


@dataclass(frozen=True)
class Written:
    script: Path
    tasks: Path
    envs: Path


def write_batch(batch: Batch, *, run_id: str, run_dir: Path, jobside: Path, jobside_sh: Path) -> Written:
    """Write the batch's tasks file, its 0600 environment file and the kept sbatch script."""
    slurm_dir = run_dir / "slurm"
    slurm_dir.mkdir(parents=True, exist_ok=True)
    envs: dict[str, dict[str, str]] = {}
    lines = []
    for element in batch.elements:
        members = []
        for k, job in enumerate(element.jobs):
            env = member_env(job)
            key = _env_key(env)
            envs[key] = env
            members.append(member_spec(job, key, k))
        lines.append(json.dumps({"members": members}, separators=(",", ":")))
    base = slurm_dir / batch.token
    tasks, envs_path, script = base.with_suffix(".tasks.jsonl"), base.with_suffix(".envs.json"), base.with_suffix(".sbatch")
    tasks.write_text("\n".join(lines) + "\n", encoding="utf-8")
    fd = os.open(envs_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(envs, f)
    write_tasks_sh(batch, base, envs)
    project = batch.jobs[0].project
    times = [e.time for e in batch.elements if e.time]
    q = shlex.quote
    values = {
        "run_id": run_id, "count": str(len(batch.jobs)), "step": json.dumps(batch.step),
        "elements": str(len(batch.elements)), "name": job_name(batch.step),
        "comment": f"repropack:{run_id}:{batch.token}", "array": array_spec(len(batch.elements),
                                                                             batch.options.get("array-throttle")),
        "project": str(project), "log": str(slurm_dir / f"{batch.token}.out"),
        "directives": "\n".join(sbatch_directives(batch)), "jobside": q(str(jobside)), "tasks": q(str(tasks)),
        "envs": q(str(envs_path)), "run_dir": q(str(run_dir)), "jobside_sh": q(str(jobside_sh)),
        "tasks_sh": q(str(base.with_suffix(".tasks.sh"))),
        "time_arg": f"--time {max(times)}" if times else "",
    }
    for key in ("project", "log"):
        if any(c in values[key] for c in "\n\r %"):
            raise ValueError(f"cannot give SLURM the path {values[key]!r}: it holds a space, '%' or a line break")
    script.write_text(render(template_text(), values), encoding="utf-8")
    return Written(script, tasks, envs_path)


def env_sh_path(base: Path, key: str) -> Path:
    return base.with_name(f"{base.name}.env-{key}.sh")


def write_tasks_sh(batch: Batch, base: Path, envs: dict[str, dict[str, str]]) -> None:
    """The same elements for jobside.sh (nodes without python3): one shell function per element and one
    0600 file of ``export`` lines per environment."""
    q = shlex.quote
    for key, env in envs.items():
        fd = os.open(env_sh_path(base, key), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(f"export {name}={q(value)}\n" for name, value in env.items())
    lines = ["# element functions for jobside.sh; generated, do not edit"]
    for index, element in enumerate(batch.elements):
        lines.append(f"element_{index}() {{")
        for k, job in enumerate(element.jobs):
            spec = member_spec(job, _env_key(member_env(job)), k)
            outputs = ";".join(f"{json.dumps(d)}\t{w}" for d, w in job.outputs
                               if not any(c in d + w for c in ";\t\n"))
            words = [json.dumps(job.instance_id), str(job.attempt), spec["cwd"], spec["stdout"], spec["stderr"],
                     "1" if spec["redirect"] else "0", str(job.resources.time or ""),
                     str(env_sh_path(base, spec["env"])), str(k), outputs, "--", *spec["argv"]]
            lines.append("  member " + " ".join(q(w) for w in words))
        lines.append("  :\n}")
    base.with_suffix(".tasks.sh").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _env_key(env: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(env, sort_keys=True).encode()).hexdigest()[:12]


def minutes(seconds: int | None) -> int | None:
    return math.ceil(seconds / 60) if seconds else None
