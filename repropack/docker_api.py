"""The one way repropack reaches the Docker engine (lock, build, the local backend, clean-up).

A client comes from the environment (``DOCKER_HOST``, else the default socket) with a
time-out on every call, and is pinged, so an engine that is not there is one
:class:`~repropack.errors.EngineUnavailable` naming the endpoint instead of a connection
error from somewhere inside the SDK. Low level on purpose: it imports nothing of
repropack but :mod:`repropack.errors`, and the docker SDK only when a client is made.
"""

from __future__ import annotations

import os
from typing import Any

from repropack.errors import EngineUnavailable

DEFAULT_ENDPOINT = "unix:///var/run/docker.sock"
HINT = "start dockerd or set DOCKER_HOST to a running engine"


def endpoint() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_ENDPOINT


def engine_errors() -> tuple[type[BaseException], ...]:
    """What the SDK raises when the engine is missing or goes away (not API refusals of a request)."""
    import docker.errors
    import requests.exceptions

    return (docker.errors.DockerException, requests.exceptions.RequestException, ConnectionError, OSError)


def connect(timeout: float, *, ping: bool = True) -> Any:
    """A docker client whose every call gives up after ``timeout`` seconds; raises EngineUnavailable."""
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - a dependency of repropack
        raise EngineUnavailable("docker", f"the docker SDK is not installed ({exc})") from exc
    client = None
    try:
        client = docker.from_env(timeout=timeout)
        if ping:
            client.ping()
    except engine_errors() as exc:
        if client is not None:
            client.close()
        raise EngineUnavailable("docker", f"no Docker daemon answers at {endpoint()} ({type(exc).__name__})",
                                hint=HINT) from exc
    return client


def connect_if_running(timeout: float, *, ping: bool = True) -> Any | None:
    """A client, or None when there is no engine (then nothing of ours can be running in it)."""
    try:
        return connect(timeout, ping=ping)
    except EngineUnavailable:
        return None
