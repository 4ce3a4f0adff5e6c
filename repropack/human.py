"""Amounts as a person reads them, one spelling everywhere (CLI summaries, logs, the HTML report).

Bytes in powers of ten (kB, MB, GB: what `ls -lh --si`, browsers and the report show);
durations from milliseconds to hours. Parsing what users write is in
:mod:`repropack.manifest.units`.
"""

from __future__ import annotations

DASH = "–"


def fmt_bytes(n: float | None) -> str:
    """25559040 -> "25.6 MB"; 512 -> "512 B"; None -> "–"."""
    if n is None:
        return DASH
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"  # unreachable: TB ends the loop


def fmt_seconds(s: float | None) -> str:
    """0.25 -> "250 ms"; 83 -> "1 min 23 s"; None -> "–"."""
    if s is None:
        return DASH
    if 0 < s < 0.001:
        return "<1 ms"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"
