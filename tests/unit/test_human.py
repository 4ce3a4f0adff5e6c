"""repropack.human: the one spelling of bytes and durations a person reads."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from repropack.human import fmt_bytes, fmt_seconds

UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}


def test_examples():
    assert fmt_bytes(25559040) == "25.6 MB"  # the peak rss `repropack logs` used to print as 25559040 B
    assert fmt_bytes(512) == "512 B" and fmt_bytes(None) == "–"
    assert fmt_seconds(0.25) == "250 ms" and fmt_seconds(83) == "1 min 23 s" and fmt_seconds(7260) == "2 h 01 min"


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10**16))
def test_bytes_read_back_within_rounding(n):
    text = fmt_bytes(n)
    match = re.fullmatch(r"(\d+(?:\.\d)?) (B|kB|MB|GB|TB)", text)
    assert match, text
    value, unit = float(match.group(1)), match.group(2)
    assert abs(value * UNITS[unit] - n) <= 0.05 * UNITS[unit] + 0.5
    assert unit == "TB" or value < 1000


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.floats(min_value=0, max_value=10**7, allow_nan=False))
def test_seconds_always_name_a_unit(s):
    assert re.fullmatch(r"(<1 ms|\d+ ms|\d+\.\d s|\d+ min \d\d s|\d+ h \d\d min)", fmt_seconds(s)), fmt_seconds(s)
