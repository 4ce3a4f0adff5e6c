"""How each backend expresses a step's cpus, memory, time and gpus.

One table, so that a step's ``resources`` means the same thing everywhere and
the report can say what was requested and how it was enforced. ``enforced``
names who stops a step that exceeds its share: the engine (cgroup, container
limit, batch scheduler) or the runner (time limit by SIGTERM then SIGKILL).
"""

from __future__ import annotations

import math
from typing import Any

from repropack.backends.base import JobResources

# backend/runtime -> resource -> (how it is expressed, who enforces it)
RESOURCES_TABLE: dict[str, dict[str, tuple[str, str]]] = {
    "host": {
        "cpus": ("scheduler share + OMP/OPENBLAS/MKL_NUM_THREADS", "scheduler"),
        "memory": ("the step's cgroup v1/v2 memory limit when cgroups are writable (root)", "kernel OOM killer"),
        "time": ("deadline", "runner: SIGTERM, SIGKILL 5 s later"),
        "gpus": ("scheduler share", "scheduler"),
    },
    "docker": {
        "cpus": ("nano_cpus = cpus * 1e9", "engine"),
        "memory": ("mem_limit (bytes), memswap_limit equal", "engine (OOMKilled)"),
        "time": ("deadline", "runner: container stop, then kill"),
        "gpus": ("device_requests count", "engine"),
    },
    "apptainer": {
        "cpus": ("scheduler share + thread variables", "scheduler"),
        "memory": ("the host cgroup's limit, as host steps, when writable (root); else none", "kernel OOM killer"),
        "time": ("deadline", "runner: SIGTERM, SIGKILL 5 s later"),
        "gpus": ("--nv from the profile's apptainer-flags", "profile"),
    },
    "slurm": {
        "cpus": ("--cpus-per-task", "slurm"),
        "memory": ("--mem in MB (rounded up)", "slurm cgroup (OUT_OF_MEMORY)"),
        "time": ("--time in minutes (rounded up)", "slurm (TIMEOUT)"),
        "gpus": ("--gpus", "slurm"),
    },
    "aws-batch": {
        "cpus": ("resourceRequirements VCPU", "batch"),
        "memory": ("resourceRequirements MEMORY in MiB (rounded up)", "batch"),
        "time": ("timeout.attemptDurationSeconds (at least 60)", "batch"),
        "gpus": ("resourceRequirements GPU", "batch"),
    },
}


def docker_limits(r: JobResources) -> dict[str, Any]:
    limits: dict[str, Any] = {"nano_cpus": int(r.cpus * 1_000_000_000)}
    if r.memory:
        limits["mem_limit"] = r.memory
        limits["memswap_limit"] = r.memory  # no swap beyond the limit: over it is an OOM, as elsewhere
    if r.gpus:
        import docker.types

        limits["device_requests"] = [docker.types.DeviceRequest(count=r.gpus, capabilities=[["gpu"]])]
    return limits


def slurm_flags(r: JobResources) -> list[str]:
    flags = [f"--cpus-per-task={r.cpus}"]
    if r.memory:
        flags.append(f"--mem={math.ceil(r.memory / 1_000_000)}M")
    if r.time:
        flags.append(f"--time={math.ceil(r.time / 60)}")
    if r.gpus:
        flags.append(f"--gpus={r.gpus}")
    return flags


def batch_requirements(r: JobResources) -> dict[str, Any]:
    reqs = [{"type": "VCPU", "value": str(r.cpus)}]
    if r.memory:
        reqs.append({"type": "MEMORY", "value": str(math.ceil(r.memory / (1 << 20)))})
    if r.gpus:
        reqs.append({"type": "GPU", "value": str(r.gpus)})
    out: dict[str, Any] = {"resourceRequirements": reqs}
    if r.time:
        out["timeout"] = {"attemptDurationSeconds": max(60, r.time)}
    return out
