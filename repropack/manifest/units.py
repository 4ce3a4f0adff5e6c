"""Byte and duration amounts as users write them: ``"4 GB"``, ``"4GiB"``, ``"4G"``, ``"1h30m"``.

GB/MB/kB are powers of ten; GiB/MiB/KiB powers of two. A bare letter (``"4G"``) means
the binary unit, as SLURM's ``--mem`` does, so a value copied from an sbatch script
means the same here. ``"* attempt"`` makes the amount grow with each retry.
"""

from __future__ import annotations

import re

from repropack.manifest.model import Quantity

_BYTE_UNITS = {
    "B": 1,
    "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15,
    "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "PIB": 2**50,
    # SLURM's single letters are binary.
    "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50,
}
_TIME_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_TIME_WORDS = {
    "day": "d", "days": "d", "hour": "h", "hours": "h", "hr": "h", "hrs": "h",
    "min": "m", "mins": "m", "minute": "m", "minutes": "m",
    "sec": "s", "secs": "s", "second": "s", "seconds": "s",
}

_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)"
_BYTES_RE = re.compile(rf"^{_NUMBER}\s*([A-Za-z]*)$")
_TIME_PART_RE = re.compile(rf"{_NUMBER}\s*([A-Za-z]+)\s*")
# SLURM's forms: M:S, H:M:S, D-H, D-H:M, D-H:M:S
_CLOCK_RE = re.compile(r"^(?:(\d+):(\d{1,2})|(\d+):(\d{1,2}):(\d{1,2})|(\d+)-(\d+)(?::(\d{1,2}))?(?::(\d{1,2}))?)$")
_ATTEMPT_RE = re.compile(r"^(.*?)\s*\*\s*attempt\s*$|^attempt\s*\*\s*(.*?)$")


class UnitError(ValueError):
    """A malformed amount; the message says what is accepted."""


def _split_attempt(text: str) -> tuple[str, bool]:
    match = _ATTEMPT_RE.match(text.strip())
    if not match:
        return text.strip(), False
    return (match.group(1) if match.group(1) is not None else match.group(2)).strip(), True


def parse_bytes(text: str) -> int:
    """``"4 GB"`` -> 4_000_000_000; ``"4GiB"`` and ``"4G"`` -> 4 * 2**30."""
    match = _BYTES_RE.match(text.strip())
    if not match:
        raise UnitError(f"{text!r} is not an amount of memory (write e.g. \"4GB\", \"512 MiB\" or \"4G\")")
    number, unit = match.groups()
    if not unit:
        raise UnitError(f"{text!r} has no unit (write e.g. \"{number}GB\" or \"{number}GiB\")")
    factor = _BYTE_UNITS.get(unit.upper())
    if factor is None:
        raise UnitError(
            f"{unit!r} in {text!r} is not a memory unit (use B, kB, MB, GB, TB, KiB, MiB, GiB, TiB, or K, M, G, T as in SLURM)"
        )
    value = int(round(float(number) * factor))
    if value < 1:
        raise UnitError(f"{text!r} is not a positive amount of memory")
    return value


def parse_seconds(text: str) -> int:
    """``"1h30m"`` -> 5400; ``"10m"``, ``"90 s"``, ``"2 days"``, SLURM's ``"1-00:30:00"``."""
    stripped = text.strip()
    clock = _CLOCK_RE.match(stripped)
    if clock:
        m_s_m, m_s_s, h, m, s, d, dh, dm, ds = (int(part or 0) for part in clock.groups())
        total = m_s_m * 60 + m_s_s + (h * 60 + m) * 60 + s + ((d * 24 + dh) * 60 + dm) * 60 + ds
        if total <= 0:
            raise UnitError(f"{text!r} is not a positive duration")
        return total
    pos, total, seen = 0, 0.0, False
    while pos < len(stripped):
        match = _TIME_PART_RE.match(stripped, pos)
        if not match:
            break
        number, unit = match.groups()
        unit = _TIME_WORDS.get(unit.lower(), unit.lower())
        if unit not in _TIME_UNITS:
            raise UnitError(f"{match.group(2)!r} in {text!r} is not a time unit (use d, h, m, s, e.g. \"1h30m\")")
        total += float(number) * _TIME_UNITS[unit]
        pos, seen = match.end(), True
    if not seen or pos != len(stripped):
        raise UnitError(f"{text!r} is not a duration (write e.g. \"10m\", \"1h30m\", \"2d\" or \"01:30:00\")")
    if total <= 0:
        raise UnitError(f"{text!r} is not a positive duration")
    return int(round(total))


def parse_memory(text: str) -> Quantity:
    """A memory amount, optionally ``"* attempt"``."""
    amount, per_attempt = _split_attempt(text)
    return Quantity(parse_bytes(amount), per_attempt=per_attempt)


def parse_time(text: str) -> Quantity:
    """A duration, optionally ``"* attempt"``."""
    amount, per_attempt = _split_attempt(text)
    return Quantity(parse_seconds(amount), per_attempt=per_attempt)


def format_bytes(value: int) -> str:
    """The shortest exact spelling, for messages: 4294967296 -> "4GiB", 4000000000 -> "4GB"."""
    units = ("PiB", "TiB", "GiB", "MiB", "KiB", "PB", "TB", "GB", "MB", "kB")
    for unit in sorted(units, key=lambda u: -_BYTE_UNITS[u.upper()]):
        factor = _BYTE_UNITS[unit.upper()]
        if value >= factor and value % factor == 0:
            return f"{value // factor}{unit}"
    return f"{value}B"
