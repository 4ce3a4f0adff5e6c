"""Signing the index with an SSH key (``ssh-keygen -Y``, namespace ``repropack``).

The signature covers the exact bytes of INDEX.json, which holds the sha256 of every member, so
one signature covers the archive. Checking needs an allowed-signers file (``ssh-keygen(1)``,
ALLOWED SIGNERS): without one, the signature is only checked to be intact and the key that made
it is named, which says nothing about who holds that key.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from repropack.archive.format import SIGN_NAMESPACE
from repropack.errors import ArchiveError, UsageError

_FINGERPRINT = re.compile(r"(\S+) key (SHA256:\S+)")


@dataclass(frozen=True)
class Trust:
    status: str  # "unsigned" | "signed-unchecked" | "trusted"
    key: str | None = None  # "ED25519 SHA256:..."
    principal: str | None = None

    def describe(self) -> str:
        if self.status == "unsigned":
            return "unsigned: nobody vouches for this archive (its index still checks every member)"
        if self.status == "signed-unchecked":
            return f"signed with {self.key}, not checked against anyone (give --allowed-signers FILE)"
        return f"signed by {self.principal} ({self.key}), listed in the allowed signers"


def _ssh_keygen() -> str:
    exe = shutil.which("ssh-keygen")
    if exe is None:
        raise UsageError("ssh-keygen is not installed (the openssh-client package): it signs and checks archives")
    return exe


def sign(data: bytes, key: Path) -> bytes:
    """The signature of ``data`` with the private key ``key``."""
    key = Path(key)
    if not key.is_file():
        raise UsageError(f"--sign {key}: no such key file")
    with tempfile.TemporaryDirectory(prefix="repropack-sign-") as tmp:
        message = Path(tmp) / "INDEX.json"
        message.write_bytes(data)
        done = subprocess.run([_ssh_keygen(), "-q", "-Y", "sign", "-f", str(key), "-n", SIGN_NAMESPACE, str(message)],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
        if done.returncode != 0:
            raise UsageError(f"--sign {key}: ssh-keygen could not sign: {_last_line(done)}",
                             hint="a key with a passphrase needs ssh-agent, or use a key without one")
        return (Path(tmp) / "INDEX.json.sig").read_bytes()


def check(data: bytes, signature: bytes | None, allowed_signers: Path | None, *, archive: Path) -> Trust:
    """Who signed ``data``; raises :class:`ArchiveError` for a tampered signature or an unlisted signer."""
    if signature is None:
        if allowed_signers is not None:
            raise ArchiveError(f"is unsigned, but --allowed-signers {allowed_signers} asks for a signature",
                               archive=archive)
        return Trust("unsigned")
    with tempfile.TemporaryDirectory(prefix="repropack-verify-") as tmp:
        sig = Path(tmp) / "INDEX.json.sig"
        sig.write_bytes(signature)
        intact = _run(["-Y", "check-novalidate", "-n", SIGN_NAMESPACE, "-s", str(sig)], data)
        if intact.returncode != 0:
            raise ArchiveError(f"the signature does not match the index: it was tampered with ({_last_line(intact)})",
                               archive=archive, member="INDEX.json.sig")
        found = _FINGERPRINT.search(intact.stdout + intact.stderr)
        key = f"{found.group(1)} {found.group(2)}" if found else "an SSH key"
        if allowed_signers is None:
            return Trust("signed-unchecked", key)
        if not Path(allowed_signers).is_file():
            raise UsageError(f"--allowed-signers {allowed_signers}: no such file")
        who = _run(["-Y", "find-principals", "-s", str(sig), "-f", str(allowed_signers)], None)
        principal = who.stdout.strip().splitlines()[0] if who.returncode == 0 and who.stdout.strip() else None
        if principal is None:
            raise ArchiveError(f"signed with {key}, which is not listed in {allowed_signers}", archive=archive)
        valid = _run(["-Y", "verify", "-f", str(allowed_signers), "-I", principal, "-n", SIGN_NAMESPACE,
                      "-s", str(sig)], data)
        if valid.returncode != 0:
            raise ArchiveError(f"the signature of {principal} does not verify: {_last_line(valid)}", archive=archive,
                               member="INDEX.json.sig")
        return Trust("trusted", key, principal)


def _run(args: list[str], data: bytes | None) -> subprocess.CompletedProcess:
    done = subprocess.run([_ssh_keygen(), *args], input=data if data is not None else b"", capture_output=True,
                          timeout=120)
    done.stdout = done.stdout.decode("utf-8", "replace")
    done.stderr = done.stderr.decode("utf-8", "replace")
    return done


def _last_line(done: subprocess.CompletedProcess) -> str:
    text = done.stderr if isinstance(done.stderr, str) else done.stderr.decode("utf-8", "replace")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {done.returncode}"
