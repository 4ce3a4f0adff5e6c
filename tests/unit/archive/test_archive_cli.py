"""The archive commands' command line: exit codes, one-line errors, --json."""

from __future__ import annotations

import json
import os

from archivekit import craft, member

from repropack.archive.writer import Source, write_archive
from repropack.cli import main


def good(tmp_path):
    path = tmp_path / "a.tar.zst"
    with path.open("wb") as out:
        write_archive(out, [Source("project/x.txt", "project", data=b"x\n"),
                            Source("project/run.sh", "project", data=b"#!/bin/sh\n", executable=True)])
    return path


def test_verify_and_unpack_a_good_archive(tmp_path, capsys):
    path = good(tmp_path)
    assert main(["verify", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["members"] == 2 and report["parts"]["project"] == {"files": 2, "bytes": 12}
    assert main(["unpack", str(path), str(tmp_path / "out")]) == 0
    assert (tmp_path / "out/project/x.txt").read_bytes() == b"x\n"
    assert os.access(tmp_path / "out/project/run.sh", os.X_OK)
    assert main(["unpack", str(path), str(tmp_path / "out")]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["unpack", str(path), str(tmp_path / "out"), "--force"]) == 0


def test_a_bad_archive_is_one_line_and_exit_8(tmp_path, capsys):
    path = craft(tmp_path / "a.tar.zst", [member("../evil", b"x")])
    assert main(["verify", str(path)]) == 8
    assert main(["unpack", str(path), str(tmp_path / "out")]) == 8
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") and "'..'" in line for line in err)
    assert not (tmp_path / "out").exists()


def test_project_verify_still_works_without_an_archive(tmp_path, capsys):
    (tmp_path / "repropack.toml").write_text("")
    assert main(["verify", "-C", str(tmp_path)]) == 1
    assert "nothing to verify" in capsys.readouterr().err
