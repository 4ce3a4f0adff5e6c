"""The image ID depends on what the image holds, not on the checkout around it (issue 15 item 2).

An untracked file in the project folder that is not in the image, or a commit that changes nothing
in it, leaves the image ID as it was; the git state goes into the build record instead.
"""

from __future__ import annotations

import subprocess

import pytest

from test_build import build_json, docker_client, locked_quickstart, project, wheel_cache  # noqa: F401 - fixtures

pytestmark = [pytest.mark.docker, pytest.mark.network]
TAG = "repropack-test/quickstart:identity"


def git(root, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=root, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_untracked_files_and_unrelated_commits_leave_the_image_id(project, wheel_cache, docker_client):
    manifest = project / "repropack.toml"
    manifest.write_text(manifest.read_text().replace('license = "CC0-1.0"', 'license = "CC0-1.0"\n'
                        'source = "https://example.org/me/quickstart.git"\nurl = "https://example.org/quickstart"'))
    git(project, "init", "-q", "-b", "main")
    (project / ".gitignore").write_text(".repropack/\n")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "project")
    first = build_json(project, "--tag", TAG, env=wheel_cache)
    labels = first["image"]["labels"]
    assert labels["org.opencontainers.image.source"] == "https://example.org/me/quickstart.git"
    assert labels["org.opencontainers.image.url"] == "https://example.org/quickstart"
    assert "org.opencontainers.image.revision" not in labels
    workflow = first["image"]["layers"][-1]
    assert labels["io.repropack.context.digest"] == workflow["diff_id"]
    assert first["source"] == {"commit": git(project, "rev-parse", "HEAD"), "dirty": False}

    (project / "notes.txt").write_text("thoughts, not part of the analysis\n")  # untracked, not in the image
    (project / "run.log").write_text("a log\n")
    dirty = build_json(project, "--tag", TAG, env=wheel_cache)
    assert dirty["image"]["id"] == first["image"]["id"]
    assert dirty["source"]["dirty"] is True

    git(project, "add", "notes.txt")
    git(project, "commit", "-qm", "unrelated")
    committed = build_json(project, "--tag", TAG, env=wheel_cache)
    assert committed["image"]["id"] == first["image"]["id"]
    assert committed["source"]["commit"] == git(project, "rev-parse", "HEAD") != first["source"]["commit"]
    assert docker_client.images.get(TAG).id == first["image"]["id"]

    (project / "scripts" / "count.py").write_text((project / "scripts" / "count.py").read_text() + "\n# changed\n")
    changed = build_json(project, "--tag", TAG, env=wheel_cache)  # what the image holds changed: another ID
    assert changed["image"]["id"] != first["image"]["id"]
    assert changed["image"]["labels"]["io.repropack.context.digest"] != labels["io.repropack.context.digest"]
