"""`repropack lock && repropack fetch && repropack env create` on the examples, through the CLI."""

from __future__ import annotations

import pytest

from repropack.cli import main


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REPROPACK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("REPROPACK_BASE_OVERRIDE", raising=False)
    monkeypatch.delenv("REPROPACK_CHANNEL_MIRRORS", raising=False)


def test_conda_local_example_end_to_end(tmp_project, capfd):
    root = str(tmp_project("conda-local"))
    assert main(["lock", "-C", root]) == 0
    assert main(["lock", "-C", root]) == 0
    assert "lock unchanged" in capfd.readouterr().err
    assert main(["fetch", "-C", root]) == 0
    assert main(["env", "create", "-C", root]) == 0
    assert "created environment default" in capfd.readouterr().err
    assert main(["env", "create", "-C", root]) == 0
    assert "reused environment default" in capfd.readouterr().err
    assert main(["env", "run", "-C", root, "--", "greet"]) == 0
    assert capfd.readouterr().out == "hello from greet-data 1.1.0\n"
    assert main(["env", "run", "default", "-C", root, "--", "sh", "-c", "exit 3"]) == 3
    assert main(["lock", "--check", "-C", root]) == 0


def test_check_fails_on_edit_and_on_manifest_change(tmp_project, capfd):
    project = tmp_project("conda-local")
    assert main(["lock", "-C", str(project)]) == 0
    conda_lock = project / "locks/default/conda-lock.yml"
    conda_lock.write_text(conda_lock.read_text().replace("greet-data-1.1.0", "greet-data-1.0.0"))
    capfd.readouterr()
    assert main(["lock", "--check", "-C", str(project)]) == 4
    err = capfd.readouterr().err
    assert err.startswith("error: ") and "locks/default/conda-lock.yml was edited" in err
    assert len(err.strip().splitlines()) == 1
    assert main(["lock", "-C", str(project)]) == 0
    manifest = project / "repropack.toml"
    manifest.write_text(manifest.read_text().replace('"numpy >=1.26"]', '"numpy >=1.20"]'))
    capfd.readouterr()
    assert main(["env", "create", "-C", str(project)]) == 4  # never relocks implicitly
    assert "environment default changed: conda (+'numpy >=1.20', -'numpy >=1.26')" in capfd.readouterr().err


def test_offline_fetch_and_create_before_fetch_name_what_is_missing(tmp_project, capfd):
    root = str(tmp_project("conda-local"))
    assert main(["lock", "-C", root]) == 0
    capfd.readouterr()
    assert main(["fetch", "--offline", "-C", root]) == 1
    assert "offline: 3 locked artifact(s) missing" in capfd.readouterr().err
    assert main(["env", "create", "--offline", "-C", root]) == 1
    assert "run `repropack fetch`" in capfd.readouterr().err
    assert main(["env", "create", "-C", root]) == 0  # fetches what the lock names, then creates


def test_channel_mirror_variable_redirects(tmp_project, tmp_path, monkeypatch, capfd):
    from _lockhelp import example_channel

    root = tmp_project("conda-local")
    elsewhere = example_channel(tmp_path / "site-mirror")
    (root / "channel").rename(tmp_path / "gone")
    monkeypatch.setenv("REPROPACK_CHANNEL_MIRRORS", f"repropack-demo={elsewhere.as_uri()}")
    assert main(["lock", "-C", str(root)]) == 0
    assert elsewhere.as_uri() not in (root / "locks/default/conda-lock.yml").read_text()
    assert main(["fetch", "-C", str(root)]) == 0


@pytest.mark.network
def test_quickstart_end_to_end(tmp_project, capfd):
    root = str(tmp_project("quickstart"))
    assert main(["lock", "-C", root]) == 0
    assert main(["fetch", "-C", root]) == 0
    assert main(["env", "create", "-C", root]) == 0
    capfd.readouterr()
    assert main(["env", "run", "-C", root, "--", "python", "-c", "import tabulate; print(tabulate.__version__)"]) == 0
    assert capfd.readouterr().out == "0.9.0\n"


def test_conda_lock_header_and_content_hash_in_conda_locks_own_form(tmp_project):
    import re

    from conda_lock.lockfile import parse_conda_lock_file

    root = tmp_project("conda-local")
    assert main(["lock", "-C", str(root)]) == 0
    path = root / "locks/default/conda-lock.yml"
    text = path.read_text()
    assert "# To re-solve the entire environment, e.g. after changing a version constraint in the source file:\n" \
           "#     repropack lock\n" in text
    assert "conda-lock -f" not in text  # conda-lock cannot read repropack.toml: that advice could not work
    hashes = parse_conda_lock_file(path).metadata.content_hash
    assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes.values()), hashes
