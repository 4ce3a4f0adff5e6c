"""Signed indexes (ssh-keygen -Y, namespace repropack): trusted, unsigned, unlisted, tampered."""

from __future__ import annotations

import json
import subprocess

import pytest
from _engines import require_tool

from repropack.archive import sign
from repropack.archive.writer import Source, write_archive
from repropack.cli import main



@pytest.fixture(autouse=True)
def _ssh_keygen():
    require_tool("ssh-keygen", "openssh-client")


def keypair(tmp_path, name):
    key = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@lab", "-f", str(key)], check=True)
    return key


def allowed(tmp_path, *keys):
    lines = []
    for key in keys:
        kind, blob, _ = (key.with_suffix(".pub").read_text().split() + [""])[:3]
        lines.append(f'{key.name}@lab namespaces="repropack" {kind} {blob}')
    path = tmp_path / "allowed_signers"
    path.write_text("\n".join(lines) + "\n")
    return path


def archive(tmp_path, key=None, name="a.tar.zst"):
    path = tmp_path / name
    with path.open("wb") as out:
        write_archive(out, [Source("project/x.txt", "project", data=b"x\n")],
                      signer=(lambda data: sign.sign(data, key)) if key else None)
    return path


def test_signed_by_a_listed_key(tmp_path, capsys):
    alice = keypair(tmp_path, "alice")
    path = archive(tmp_path, alice)
    assert main(["verify", str(path), "--allowed-signers", str(allowed(tmp_path, alice)), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["signature"]["status"] == "trusted" and report["signature"]["principal"] == "alice@lab"


def test_signed_archives_are_deterministic(tmp_path):
    alice = keypair(tmp_path, "alice")
    assert archive(tmp_path, alice, "1").read_bytes() == archive(tmp_path, alice, "2").read_bytes()


def test_signed_by_someone_not_listed(tmp_path, capsys):
    alice, mallory = keypair(tmp_path, "alice"), keypair(tmp_path, "mallory")
    path = archive(tmp_path, mallory)
    assert main(["verify", str(path), "--allowed-signers", str(allowed(tmp_path, alice))]) == 8
    err = capsys.readouterr().err
    assert "not listed in" in err and len(err.strip().splitlines()) == 1


def test_unsigned_said_plainly_and_refused_when_a_signature_is_asked_for(tmp_path, capsys):
    alice = keypair(tmp_path, "alice")
    path = archive(tmp_path)
    assert main(["verify", str(path)]) == 0
    assert "unsigned" in capsys.readouterr().out
    assert main(["verify", str(path), "--allowed-signers", str(allowed(tmp_path, alice))]) == 8
    assert "is unsigned" in capsys.readouterr().err


def test_signed_without_allowed_signers_names_the_key_only(tmp_path, capsys):
    path = archive(tmp_path, keypair(tmp_path, "alice"))
    assert main(["verify", str(path)]) == 0
    assert "not checked against anyone" in capsys.readouterr().out


def test_tampered_signature_refused_and_unpack_leaves_nothing(tmp_path, capsys):
    import io
    import tarfile

    import zstandard

    alice = keypair(tmp_path, "alice")
    good = archive(tmp_path, alice)
    raw = zstandard.ZstdDecompressor().stream_reader(good.read_bytes()).read()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        infos = [(i, tar.extractfile(i).read()) for i in tar.getmembers()]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in infos:
            if info.name == "INDEX.json.sig":
                lines = data.decode().splitlines()
                middle = len(lines) // 2
                lines[middle] = lines[middle][:-4] + ("AAAA" if not lines[middle].endswith("AAAA") else "BBBB")
                data = ("\n".join(lines) + "\n").encode()
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    bad = tmp_path / "bad.tar.zst"
    bad.write_bytes(zstandard.ZstdCompressor().compress(out.getvalue()))
    signers = str(allowed(tmp_path, alice))
    assert main(["verify", str(bad), "--allowed-signers", signers]) == 8
    assert main(["unpack", str(bad), str(tmp_path / "out"), "--allowed-signers", signers]) == 8
    assert "signature" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
