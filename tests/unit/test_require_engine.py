"""The skip-or-fail rule of require_engine, with fake probes (no engine needed)."""

from __future__ import annotations

import pytest

import _engines
from _engines import REQUIRE_ENV, require_engine


@pytest.fixture
def fake_docker(monkeypatch):
    """Replace the docker probe; returns the list of calls so caching can be checked."""
    calls: list[str] = []
    state = {"problem": None}

    def probe():
        calls.append("docker")
        return state["problem"]

    monkeypatch.setattr(_engines, "_cache", {})
    monkeypatch.setitem(_engines.CHECKS, "docker", probe)
    return calls, state


def test_available_engine_passes(fake_docker, monkeypatch):
    monkeypatch.setenv(REQUIRE_ENV, "1")
    require_engine("docker")  # no exception


def test_missing_engine_skips_with_reason(fake_docker, monkeypatch):
    calls, state = fake_docker
    state["problem"] = "daemon not running"
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="docker unavailable: daemon not running"):
        require_engine("docker")


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_missing_engine_fails_when_required(fake_docker, monkeypatch, value):
    calls, state = fake_docker
    state["problem"] = "daemon not running"
    monkeypatch.setenv(REQUIRE_ENV, value)
    with pytest.raises(pytest.fail.Exception, match=f"daemon not running.*{REQUIRE_ENV}=1"):
        require_engine("docker")


@pytest.mark.parametrize("value", ["", "0", "no"])
def test_other_values_still_skip(fake_docker, monkeypatch, value):
    calls, state = fake_docker
    state["problem"] = "gone"
    monkeypatch.setenv(REQUIRE_ENV, value)
    with pytest.raises(pytest.skip.Exception):
        require_engine("docker")


def test_probe_runs_once_per_session(fake_docker, monkeypatch):
    calls, state = fake_docker
    state["problem"] = "gone"
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    for _ in range(3):
        with pytest.raises(pytest.skip.Exception):
            require_engine("docker")
    assert calls == ["docker"]


def test_probe_exception_is_a_reason(monkeypatch):
    def broken():
        raise ConnectionRefusedError("no socket")

    monkeypatch.setattr(_engines, "_cache", {})
    monkeypatch.setitem(_engines.CHECKS, "docker", broken)
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="ConnectionRefusedError: no socket"):
        require_engine("docker")


def test_unknown_engine_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown engine 'dokcer'"):
        require_engine("dokcer")


def test_missing_command_names_it(monkeypatch):
    monkeypatch.setattr(_engines.shutil, "which", lambda name: None)
    assert _engines._check_apptainer() == "`apptainer` not on PATH"


class _Item:
    """The part of pytest.Item the hook reads."""

    def __init__(self, *markers: str):
        self.markers = set(markers)

    def get_closest_marker(self, name):
        return object() if name in self.markers else None


def test_marker_triggers_the_check(fake_docker, monkeypatch):
    """What tests/conftest.py's pytest_runtest_setup runs for every test."""
    calls, state = fake_docker
    state["problem"] = "fake outage"
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    _engines.require_marked_engines(_Item())  # unmarked: no probe at all
    assert calls == []
    with pytest.raises(pytest.skip.Exception, match="fake outage"):
        _engines.require_marked_engines(_Item("docker"))
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="fake outage"):
        _engines.require_marked_engines(_Item("docker"))
