"""Which real engines this machine offers, checked cheaply and once per test session.

Tests that need an engine carry its marker (``@pytest.mark.docker`` ...) or call
``require_engine("docker")``. A missing engine skips the test with the reason, unless
``REPROPACK_REQUIRE_ENGINES=1`` (CI), where it fails: CI must prove the engines, not skip them.
``scripts/engines.sh`` brings every engine up.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import urllib.request
from collections.abc import Callable

import pytest

LOCAL_BASE_IMAGE = "local/debian:bookworm-python"
REGISTRY = "127.0.0.1:5000"
REQUIRE_ENV = "REPROPACK_REQUIRE_ENGINES"
PYPI_PROBE = "https://pypi.org/simple/pip/"
CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")

# name -> reason it is unusable, or None when it works; filled on first use.
_cache: dict[str, str | None] = {}


def engines_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in {"1", "true", "yes"}


def require_engine(name: str) -> None:
    """Skip (or, under REPROPACK_REQUIRE_ENGINES=1, fail) the calling test unless engine `name` works."""
    if name not in CHECKS:
        raise ValueError(f"unknown engine {name!r}; known: {', '.join(sorted(CHECKS))}")
    problem = engine_problem(name)
    if problem is None:
        return
    message = f"{name} unavailable: {problem} (scripts/engines.sh brings it up)"
    if engines_required():
        pytest.fail(f"{message}; {REQUIRE_ENV}=1 forbids skipping", pytrace=False)
    pytest.skip(message)


def require_tool(tool: str, package: str) -> None:
    """Skip (or, under REPROPACK_REQUIRE_ENGINES=1, fail) the calling test unless `tool` is on PATH;
    scripts/engines.sh installs its Debian `package`."""
    if shutil.which(tool) is not None:
        return
    message = f"{tool} missing (Debian package {package}, installed by scripts/engines.sh)"
    if engines_required():
        pytest.fail(f"{message}; {REQUIRE_ENV}=1 forbids skipping", pytrace=False)
    pytest.skip(message)


def engine_problem(name: str) -> str | None:
    if name not in _cache:
        try:
            _cache[name] = CHECKS[name]()
        except Exception as exc:  # any failure of a probe means the engine is not usable
            _cache[name] = f"{type(exc).__name__}: {exc}"
    return _cache[name]


def _run(*argv: str, timeout: float = 20) -> subprocess.CompletedProcess[str] | str:
    """Run a probe command; return its result, or a reason string when it cannot start or succeed."""
    if shutil.which(argv[0]) is None:
        return f"`{argv[0]}` not on PATH"
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"`{' '.join(argv)}` timed out after {timeout:g}s"
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"`{' '.join(argv)}` exited {done.returncode}: {tail[0]}"
    return done


def _check_docker() -> str | None:
    import docker  # heavy; only when a docker test runs

    client = docker.from_env(timeout=10)
    try:
        client.ping()
    finally:
        client.close()
    return None


def _check_apptainer() -> str | None:
    done = _run("apptainer", "--version")
    return done if isinstance(done, str) else None


def _check_slurm() -> str | None:
    states = _run("sinfo", "-h", "-o", "%T")
    if isinstance(states, str):
        return states
    # A cluster whose only node is down would accept jobs and never run them.
    if not any(s.startswith(("idle", "mix", "alloc", "comp")) for s in states.stdout.split()):
        return f"no usable node (sinfo states: {states.stdout.split() or 'none'})"
    # Without slurmdbd, sacct fails ("accounting storage is disabled") and job polling would hang.
    acct = _run("sacct", "-n", "-X", "-o", "JobID", "-S", "now-1minute")
    return acct if isinstance(acct, str) else None


def _http_ok(url: str, timeout: float = 10) -> str | None:
    cafile = next((p for p in CA_BUNDLES if os.path.exists(p)), None)
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=cafile))
    ]
    if url.startswith("http://127.0.0.1"):
        handlers.append(urllib.request.ProxyHandler({}))  # a proxy would not reach our loopback
    with urllib.request.build_opener(*handlers).open(url, timeout=timeout) as response:
        return None if response.status == 200 else f"GET {url} returned {response.status}"


def _check_registry() -> str | None:
    return _http_ok(f"http://{REGISTRY}/v2/")


def _check_network() -> str | None:
    return _http_ok(PYPI_PROBE)


def _check_browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            done = _run(name, "--headless", "--version")
            return done if isinstance(done, str) else None
    return "no chromium on PATH"


def _check_prometheus() -> str | None:
    for tool in ("prometheus", "promtool"):
        done = _run(tool, "--version")
        if isinstance(done, str):
            return done
    return None


CHECKS: dict[str, Callable[[], str | None]] = {
    "docker": _check_docker,
    "apptainer": _check_apptainer,
    "slurm": _check_slurm,
    "registry": _check_registry,
    "network": _check_network,
    "browser": _check_browser,
    "prometheus": _check_prometheus,
}
ENGINE_MARKERS = tuple(CHECKS)


def require_marked_engines(item) -> None:
    """The conftest hook's body: require every engine whose marker the test item carries."""
    for name in ENGINE_MARKERS:
        if item.get_closest_marker(name) is not None:
            require_engine(name)


def require_base_image() -> str:
    """The local base image name, after checking Docker has it (skip/fail like require_engine)."""
    require_engine("docker")
    key = "base-image"
    if key not in _cache:
        import docker

        client = docker.from_env(timeout=30)
        try:
            client.images.get(LOCAL_BASE_IMAGE)
            _cache[key] = None
        except docker.errors.ImageNotFound:
            _cache[key] = f"image {LOCAL_BASE_IMAGE} missing (scripts/engines.sh base builds it)"
        finally:
            client.close()
    if _cache[key] is not None:
        if engines_required():
            pytest.fail(f"{_cache[key]}; {REQUIRE_ENV}=1 forbids skipping", pytrace=False)
        pytest.skip(_cache[key])
    return LOCAL_BASE_IMAGE
