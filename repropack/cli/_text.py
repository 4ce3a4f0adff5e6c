"""Text from user data made safe for a terminal: the one helper every command prints through.

Instance ids, foreach values, parameters, paths, messages and the log tails of a failure
summary come from the user (or from a step). An escape sequence in any of them would reach
the terminal raw (clear the screen, retitle the window, hide a line). :func:`safe` shows
control and invisible formatting characters escaped (``\\x1b``, ``\\u202e``); line feeds and
tabs stay in multi-line text, one-line fields escape them too.
"""

from __future__ import annotations

import re

import click

# C0 and C1 controls, DEL, and the zero-width and bidirectional formatting marks
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_UNSAFE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: object, *, one_line: bool = False) -> str:
    """``text`` with every control character shown escaped (``\\n`` and ``\\t`` kept unless one_line)."""
    text = "" if text is None else str(text)
    pattern = _UNSAFE_LINE if one_line else _UNSAFE
    if pattern.search(text) is None:  # the common case costs one scan
        return text
    return pattern.sub(_escaped, text)


def say(text: object, *, err: bool = False, nl: bool = True) -> None:
    """click.echo of :func:`safe` text."""
    click.echo(safe(text), err=err, nl=nl)
