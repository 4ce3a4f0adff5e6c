from pathlib import Path

import pytest

from repropack.errors import UsageError
from repropack.lock import channels as ch


def test_strip_credentials_removes_userinfo_and_tokens():
    assert ch.strip_credentials("https://user:s3cret@host.org/simple") == "https://host.org/simple"
    assert ch.strip_credentials("https://conda.example/t/tk-123/chan/linux-64/x.conda") == (
        "https://conda.example/chan/linux-64/x.conda")
    assert ch.strip_credentials("conda-forge") == "conda-forge"


def test_canonical_channel_url():
    assert ch.canonical_channel_url("conda-forge") == "https://conda.anaconda.org/conda-forge"
    assert ch.canonical_channel_url("https://u:p@mirror.org/cf/") == "https://mirror.org/cf"


def test_mirrors_from_manifest_env_override_and_relative_paths(tmp_path: Path):
    env = {ch.MIRRORS_ENV: "bioconda=https://bio.example/b, conda-forge=file:///srv/cf"}
    got = ch.mirrors({"conda-forge": "file:///elsewhere", "local": "file://./channel"}, tmp_path, env)
    assert got["https://conda.anaconda.org/conda-forge"] == "file:///srv/cf"  # the variable wins
    assert got["https://conda.anaconda.org/bioconda"] == "https://bio.example/b"
    assert got["https://conda.anaconda.org/local"] == (tmp_path / "channel").resolve().as_uri()


def test_malformed_mirror_variable_is_named():
    with pytest.raises(UsageError, match="REPROPACK_CHANNEL_MIRRORS"):
        ch.mirrors({}, Path("/"), {ch.MIRRORS_ENV: "conda-forge"})


def test_mirror_round_trip_records_canonical_and_downloads_from_mirror():
    mirror_map = {"https://conda.anaconda.org/conda-forge": "file:///srv/cf"}
    seen = "file:///srv/cf/noarch/x-1-0.conda"
    canonical = ch.to_canonical(seen, "conda-forge", mirror_map)
    assert canonical == "https://conda.anaconda.org/conda-forge/noarch/x-1-0.conda"
    assert ch.to_download(canonical, mirror_map) == seen
    assert ch.to_download(canonical, {}) == canonical


def test_credentials_for_hosts():
    creds = ch.credentials_for(["https://alice:pw@private.example/simple", "conda-forge"])
    assert creds == {"private.example": ("alice", "pw")}
