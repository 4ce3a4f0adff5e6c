"""Keyed digests of env-keyed variables (issue 8, defect 12): never the value, never a plain hash."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest

from repropack.errors import RunError
from repropack.run.envkeys import KEY_FILE, UNSET, KeyedEnv


def test_defect12_digests_are_keyed_per_project_and_hold_no_value(tmp_path):
    env = {"TOKEN": "abc", "EMPTY": ""}
    one = KeyedEnv(tmp_path / "a", env).digests(["TOKEN", "EMPTY", "NOPE"])
    assert one["NOPE"] == UNSET and one["EMPTY"] != UNSET
    assert one["TOKEN"].startswith("hmac-sha256:")
    assert "abc" not in one["TOKEN"]
    assert one["TOKEN"].split(":")[1] != hashlib.sha256(b"abc").hexdigest()
    assert KeyedEnv(tmp_path / "a", env).digests(["TOKEN"])["TOKEN"] == one["TOKEN"]  # stable within a project
    assert KeyedEnv(tmp_path / "b", env).digests(["TOKEN"])["TOKEN"] != one["TOKEN"]  # another key elsewhere
    assert KeyedEnv(tmp_path / "a", {"TOKEN": "abd"}).digests(["TOKEN"])["TOKEN"] != one["TOKEN"]
    assert KeyedEnv(tmp_path / "a", {"OTHER": "abc"}).digests(["OTHER"])["OTHER"] != one["TOKEN"]  # name bound
    mode = os.stat(tmp_path / "a" / KEY_FILE).st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert not [p for p in (tmp_path / "a" / ".repropack").iterdir() if p.name.endswith(".tmp")]


def test_no_key_file_without_keyed_variables(tmp_path):
    assert KeyedEnv(tmp_path, {}).digests([]) == {}
    assert not (tmp_path / KEY_FILE).exists()


def test_a_symlinked_or_damaged_key_file_is_refused(tmp_path):
    (tmp_path / ".repropack").mkdir()
    target = tmp_path / "elsewhere"
    target.write_text("0" * 64 + "\n")
    os.symlink(target, tmp_path / KEY_FILE)
    with pytest.raises(RunError, match="env-key: cannot read the project's env key"):
        KeyedEnv(tmp_path, {"A": "1"}).digests(["A"])
    os.unlink(tmp_path / KEY_FILE)
    (tmp_path / KEY_FILE).write_text("short\n")
    with pytest.raises(RunError, match="not a repropack env key"):
        KeyedEnv(tmp_path, {"A": "1"}).digests(["A"])
