"""Command lines of the local runtimes (pure, unit-tested).

Every runtime runs the same ``script.sh`` as ``bash -euo pipefail script.sh``
with stdout and stderr going to the attempt directory's ``stdout``/``stderr``,
in the project directory, with exactly ``job.env`` as its environment (the
runtime may add only what it must, e.g. the image's own PATH in a container).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from repropack.backends.base import LABEL_RUN, Job
from repropack.backends.resources import docker_limits
from repropack.errors import RunError

# Inside a container: the streams go to files in the (writable) attempt directory,
# so the container's own log stays empty and logs are readable while it runs.
# First every writable folder mount of the container is compared (device and inode) with the
# folders the runner checked: the engine mounts by path, and a step running meanwhile could swap a
# component of that path (or of the target inside the container, which lies in the project) for a
# link to somewhere outside. The mounts are read from the container's own mount table, not reached
# through the paths that were asked for; one that is not a checked folder ends the container with
# MOUNT_MISMATCH before the step runs, and nothing is written there. The engine's own mounts (/,
# /proc, /sys, /dev, the tmpfs /tmp and /var/tmp, single files such as /etc/hosts) are left out.
MOUNT_MISMATCH = 97
DOCKER_NETWORK_ENV = "REPROPACK_DOCKER_NETWORK"  # a network mode for every step container ("none")
MOUNTINFO = "/proc/self/mountinfo"
INNER = (
    's=$1 o=$2 e=$3 t=$4; shift 4; ok=" $* "; '
    'while read -r _ _ _ _ m f _; do '
    'case "$f" in rw|rw,*) ;; *) continue ;; esac; '
    'm=$(printf %b "$m"); '
    'case "$m" in /|/tmp|/var/tmp|/proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac; '
    '[ -d "$m" ] && [ ! -L "$m" ] || continue; '
    'i=$(stat -c %d:%i -- "$m" 2>/dev/null) || i=none; '
    'case "$ok" in *" $i "*) ;; *) '
    f'echo "repropack: the writable mount $m is not a folder the runner checked; the step did not run" >&2; '
    f'exit {MOUNT_MISMATCH} ;; esac; '
    'done < "$t"; '
    'exec bash -euo pipefail "$s" >"$o" 2>"$e"'
)
HOST_ARGV = ("bash", "-euo", "pipefail")


def host_argv(job: Job) -> list[str]:
    return [*HOST_ARGV, str(job.script_path)]


def _bind_safe(path: Path) -> str:
    text = str(path)
    if any(c in text for c in ",:\n"):
        raise RunError(f"cannot bind {text!r} into a container: the path contains ',', ':' or a newline")
    return text


def inner_argv(job: Job, *, mountinfo: str = MOUNTINFO) -> list[str]:
    """The container's command: check the mounts (see INNER), then run the step with its streams in files."""
    return ["bash", "-c", INNER, "repropack-step", str(job.script_path), str(job.stdout_path),
            str(job.stderr_path), mountinfo, *job.writable_ids]


def apptainer_argv(job: Job, *, apptainer: str = "apptainer") -> list[str]:
    if not job.image:
        raise RunError(f"{job.instance_id}: no SIF to run (run `repropack build` or set the profile's image)")
    project = _bind_safe(job.project)
    home = _bind_safe(Path(job.env.get("HOME", job.attempt_dir / "home")))
    argv = [apptainer, "exec", "--cleanenv", "--containall", *job.runtime_flags]
    argv += ["--pwd", project, "--home", f"{home}:{home}", "--bind", f"{project}:{project}:ro"]
    for path in job.writable:
        p = _bind_safe(path)
        argv += ["--bind", f"{p}:{p}:rw"]
    argv += [job.image, *inner_argv(job)]
    return argv


def apptainer_env(job: Job) -> dict[str, str]:
    """The environment of the `apptainer` process: the step's variables travel as APPTAINERENV_*."""
    env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")}
    for key in ("REPROPACK_RUN_ID",):
        if key in job.env:
            env[key] = job.env[key]  # lets the supervisor find the apptainer process itself
    for key, value in job.env.items():
        if key not in ("HOME", "PATH"):  # HOME is --home; PATH is the image's
            env[f"APPTAINERENV_{key}"] = value
    return env


def docker_run_kwargs(job: Job, *, uid: int, gid: int) -> dict[str, Any]:
    """Keyword arguments of docker SDK's ``containers.run`` for one attempt."""
    if not job.image:
        raise RunError(f"{job.instance_id}: no image to run (run `repropack build` or set the profile's image)")
    project = str(job.project)
    # Mounts, not volumes: a bind volume whose source is missing is created by dockerd (as root),
    # so a path swapped for a dangling link would make folders outside the project.
    mounts = [_bind(project, read_only=True)] + [_bind(str(path), read_only=False) for path in job.writable]
    env = {k: v for k, v in job.env.items() if k != "PATH"}  # PATH is the image's
    kwargs: dict[str, Any] = {
        "image": job.image,
        "command": inner_argv(job),
        "entrypoint": [],
        "user": f"{uid}:{gid}",
        "working_dir": project,
        "environment": env,
        "mounts": mounts,
        "labels": dict(job.labels),
        "detach": True,
        "stdin_open": False,
        "tty": False,
        "init": True,  # reaps the step's orphans and forwards signals
    }
    kwargs.update(docker_limits(job.resources))
    network = os.environ.get(DOCKER_NETWORK_ENV)
    if network:  # `repropack rerun` gives the containers no network ("none")
        kwargs["network_mode"] = network
    return kwargs


def _bind(path: str, *, read_only: bool) -> dict[str, Any]:
    # the docker SDK's docker.types.Mount is this dict; built here so this module needs no SDK
    return {"Target": path, "Source": path, "Type": "bind", "ReadOnly": read_only}


__all__ = [
    "INNER",
    "MOUNT_MISMATCH",
    "LABEL_RUN",
    "apptainer_argv",
    "apptainer_env",
    "docker_run_kwargs",
    "host_argv",
    "inner_argv",
]
