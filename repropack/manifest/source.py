"""Reading a manifest or module file safely: bounded size, UTF-8, TOML with the parser's line:column."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from repropack.errors import ManifestError

MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 32  # tables and arrays inside each other; real manifests need a handful
_TOML_POSITION = re.compile(r"^(.*?)\s*\(at line (\d+), column (\d+)\)\s*$", re.S)


def read_text(path: Path, what: str = "manifest") -> str:
    """The file's text; refuses a huge file before reading it, and a file that is not UTF-8."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ManifestError(f"no {what} here", path=path) from None
    except OSError as exc:
        raise ManifestError(f"cannot read the {what}: {exc.strerror}", path=path) from None
    if size > MAX_BYTES:
        raise ManifestError(
            f"the {what} is {size / 2**20:.1f} MiB; the limit is {MAX_BYTES // 2**20} MiB",
            path=path,
            hint="large value lists belong in a data file that a step reads",
        )
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)  # bounded even if the file grew since stat
    except OSError as exc:
        raise ManifestError(f"cannot read the {what}: {exc.strerror}", path=path) from None
    if len(data) > MAX_BYTES:
        raise ManifestError(f"the {what} is larger than {MAX_BYTES // 2**20} MiB", path=path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ManifestError(
            f"the {what} is not UTF-8 text (byte 0x{data[exc.start]:02x})",
            path=path, line=line, column=column, hint="save the file as UTF-8",
        ) from None
    return text.removeprefix("\ufeff")


def parse_toml(text: str, path: Path, what: str = "manifest") -> dict[str, Any]:
    if not text.strip() or all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()):
        raise ManifestError(f"the {what} is empty", path=path, hint="run `repropack init` to write a starting manifest")
    try:
        data = tomllib.loads(text)
    except RecursionError:  # tomllib parses inline tables and arrays recursively
        line = _deep_line(text)
        raise ManifestError(f"values nested more than {MAX_DEPTH} levels deep", path=path, line=line,
                            hint="flatten the value") from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POSITION.match(message)
        if match:
            reason, line, column = match.group(1), int(match.group(2)), int(match.group(3))
            raise ManifestError(f"not valid TOML: {reason}", path=path, line=line, column=column) from None
        if message.endswith("(at end of document)"):
            line = text.count("\n") + 1
            column = len(text) - (text.rfind("\n") + 1) + 1
            reason = message.removesuffix("(at end of document)").strip()
            raise ManifestError(f"not valid TOML: {reason} (at end of file)", path=path, line=line, column=column) from None
        raise ManifestError(f"not valid TOML: {message}", path=path) from None
    _check_depth(data, path)
    return data


def _check_depth(data: dict[str, Any], path: Path) -> None:
    """Refuse deep nesting here, without recursion, so that no later walk of the tree recurses too deep."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while stack:
        value, key = stack.pop()
        if len(key) > MAX_DEPTH:
            shown = ".".join(key[:4]) + ".…"
            raise ManifestError(f"nested more than {MAX_DEPTH} levels deep", path=path, key=shown,
                                hint="flatten the value")
        if isinstance(value, dict):
            stack.extend((v, (*key, str(k))) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, (*key, f"[{i}]")) for i, v in enumerate(value))


def _deep_line(text: str) -> int | None:
    """The line where brackets first nest past the limit (quoted text skipped; a hint only)."""
    depth, quote = 0, ""
    for number, line in enumerate(text.splitlines(), 1):
        for char in line:
            if quote:
                quote = "" if char == quote else quote
            elif char in "\"'":
                quote = char
            elif char in "[{":
                depth += 1
                if depth > MAX_DEPTH:
                    return number
            elif char in "]}":
                depth -= 1
        if not quote:
            depth = max(depth, 0) if line.strip().startswith("[") and depth <= 1 else depth
    return None
