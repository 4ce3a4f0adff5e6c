"""``repropack verify ARCHIVE`` and the checks ``unpack`` and ``rerun`` share: the index against every
member, then the signature against the allowed signers (when given)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from repropack.archive import sign
from repropack.archive.reader import Contents, read_archive
from repropack.archive.safety import Limits


@dataclass(frozen=True)
class Verdict:
    archive: Path
    contents: Contents
    trust: sign.Trust

    def as_json(self) -> dict:
        index = self.contents.index
        return {
            "archive": str(self.archive),
            "format": index.get("format"),
            "members": len(index.get("members", [])),
            "parts": index.get("parts", {}),
            "project": index.get("project"),
            "signature": {"status": self.trust.status, "key": self.trust.key, "principal": self.trust.principal},
            "compressed_bytes": self.contents.compressed,
        }


def trust_checker(archive: Path, allowed_signers: Path | None, found: list[sign.Trust]):
    """A ``trust`` hook for :func:`~repropack.archive.unpack.unpack`: refuses before anything is moved in place."""

    def check(contents: Contents) -> None:
        found.append(sign.check(contents.index_bytes, contents.signature, allowed_signers, archive=archive))

    return check


def verify_archive(archive: Path, *, allowed_signers: Path | None = None, limits: Limits = Limits(),
                   progress=lambda _n: None) -> Verdict:
    """Read the whole archive (nothing written), check every member and the signature."""
    contents = read_archive(archive, limits=limits, progress=progress)
    trust = sign.check(contents.index_bytes, contents.signature, allowed_signers, archive=Path(archive))
    return Verdict(Path(archive), contents, trust)
