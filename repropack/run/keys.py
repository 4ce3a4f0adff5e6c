"""Cache keys of step instances and the file-hash cache behind them.

A key is a versioned hash (``KEY_SCHEME``) over canonical JSON of five parts:
the instance's expanded command with project-relative paths (``key_material``),
its environment's lock hash, the content hashes of its inputs and of its
sources, and its parameters. Nothing in it depends on where the project lives,
on timestamps or on inodes, so moving, copying or touching the project keeps
every key.

Content hashes are cached in ``.repropack/cache/filehash.json`` by
project-relative path, size, mtime_ns and inode: an unchanged file is not read
again, and a moved or touched file is rehashed (once) to the same digest.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repropack.run.checksums import sha256_files

KEY_SCHEME = 1
CACHE_VERSION = 1
# Per-file digests are kept in a record only up to this many files; beyond, the
# aggregate alone (a 100,000-input gather would otherwise bloat the journal).
DETAIL_LIMIT = 1000


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def files_digest(digests: Mapping[str, str]) -> str:
    """One digest over (path, content digest) pairs, independent of mapping order."""
    h = hashlib.sha256()
    for path in sorted(digests):
        h.update(path.encode("utf-8", "surrogateescape"))
        h.update(b"\0")
        h.update(digests[path].encode("ascii"))
        h.update(b"\n")
    return h.hexdigest()


@dataclass(frozen=True)
class KeyParts:
    command: str  # sha256 of key_material
    environment: str  # the environment's lock hash ("host" without one)
    inputs: str  # files_digest of the inputs
    sources: str
    params: str  # sha256 of canonical params
    files: Mapping[str, str] = field(default_factory=dict)  # per-file digests (inputs + sources) when small

    @functools.cached_property
    def key(self) -> str:  # asked for by the planner, the instance record and the journal: computed once
        body = {
            "scheme": KEY_SCHEME,
            "command": self.command,
            "environment": self.environment,
            "inputs": self.inputs,
            "sources": self.sources,
            "params": self.params,
        }
        return f"k{KEY_SCHEME}:" + sha256_text(canonical(body))

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "command": self.command,
            "environment": self.environment,
            "inputs": self.inputs,
            "sources": self.sources,
            "params": self.params,
        }
        if self.files:
            record["files"] = dict(self.files)
        return record


def make_parts(
    *,
    key_material: str,
    environment: str,
    inputs: Mapping[str, str],
    sources: Mapping[str, str],
    params: Mapping[str, Any],
) -> KeyParts:
    files: dict[str, str] = {}
    if len(inputs) + len(sources) <= DETAIL_LIMIT:
        files = {**inputs, **sources}
    return KeyParts(
        command=sha256_text(key_material),
        environment=environment,
        inputs=files_digest(inputs),
        sources=files_digest(sources),
        params=_params_digest(params),
        files=files,
    )


_PARAMS_CACHE: dict[Any, str] = {}


def _params_digest(params: Mapping[str, Any]) -> str:
    """Digest of canonical params; memoised, since all instances of a step share them."""
    try:
        marker: Any = tuple(sorted(params.items()))
        hash(marker)
    except TypeError:  # unhashable values (lists): no memo
        return sha256_text(canonical(dict(params)))
    digest = _PARAMS_CACHE.get(marker)
    if digest is None:
        if len(_PARAMS_CACHE) > 10_000:
            _PARAMS_CACHE.clear()
        digest = _PARAMS_CACHE[marker] = sha256_text(canonical(dict(params)))
    return digest


def change_reasons(old: Mapping[str, Any] | None, new: KeyParts) -> list[str]:
    """Why an instance with recorded parts `old` must run again, in words."""
    if not old:
        return ["new"]
    reasons: list[str] = []
    if old.get("command") != new.command:
        reasons.append("changed command")
    if old.get("environment") != new.environment:
        reasons.append("changed environment")
    for part, label in (("inputs", "input"), ("sources", "source")):
        if old.get(part) != getattr(new, part):
            changed = _changed_files(old.get("files") or {}, new.files, label)
            reasons.extend(changed or [f"changed {label}"])
    if old.get("params") != new.params:
        reasons.append("changed params")
    return reasons


def _changed_files(old: Mapping[str, str], new: Mapping[str, str], label: str) -> list[str]:
    if not old or not new:
        return []
    names = sorted(p for p in set(old) | set(new) if old.get(p) != new.get(p))
    shown = [f"changed {label} {p}" for p in names[:3]]
    if len(names) > 3:
        shown.append(f"... and {len(names) - 3} more")
    return shown


class FileHashCache:
    """Content digests of project files, keyed by (path, size, mtime_ns, inode)."""

    def __init__(self, root: Path, store: Path | None = None):
        self.root = Path(root)
        self.store = store if store is not None else self.root / ".repropack" / "cache" / "filehash.json"
        self._prefix = str(self.root) + os.sep
        self._entries: dict[str, list[Any]] = {}
        self._dirty = False
        self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.store.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError, UnicodeDecodeError):
            return  # a lost or damaged cache costs one rehash, never a wrong answer
        if isinstance(data, dict) and data.get("version") == CACHE_VERSION and isinstance(data.get("entries"), dict):
            self._entries = data["entries"]

    @staticmethod
    def _stamp(st: os.stat_result) -> list[int]:
        return [st.st_size, st.st_mtime_ns, st.st_ino]

    def lookup(self, rel: str) -> tuple[str | None, os.stat_result | None]:
        """(digest if cached and unchanged, stat) — stat None when the file is missing."""
        try:
            st = os.stat(self._prefix + rel)  # string join: this runs once per input of every instance
        except (FileNotFoundError, NotADirectoryError):
            return None, None
        entry = self._entries.get(rel)
        if (entry is not None and entry[0] == st.st_size and entry[1] == st.st_mtime_ns
                and entry[2] == st.st_ino):
            return entry[3], st
        return None, st

    def digests(self, rels: Iterable[str], *, missing_ok: bool = False) -> dict[str, str]:
        """Digest of each file; hashes (in parallel) only those whose stamp changed."""
        result: dict[str, str] = {}
        todo: list[tuple[str, os.stat_result]] = []
        for rel in rels:
            if rel in result:
                continue
            digest, st = self.lookup(rel)
            if st is None:
                if missing_ok:
                    continue
                raise FileNotFoundError(rel)
            if digest is not None:
                result[rel] = digest
            else:
                todo.append((rel, st))
        if todo:
            hexes = sha256_files([self.root / rel for rel, _ in todo])
            for (rel, st), hexdigest in zip(todo, hexes):
                self.remember(rel, hexdigest, st)
                result[rel] = hexdigest
        return result

    def digest(self, rel: str) -> str | None:
        return self.digests([rel], missing_ok=True).get(rel)

    def remember(self, rel: str, hexdigest: str, st: os.stat_result | None = None) -> None:
        """Record a digest we computed ourselves (outputs hashed right after a step)."""
        if st is None:
            st = os.stat(self.root / rel)
        self._entries[rel] = [*self._stamp(st), hexdigest]
        self._dirty = True

    def forget_missing(self) -> None:
        for rel in [r for r in self._entries if not (self.root / r).exists()]:
            del self._entries[rel]
            self._dirty = True

    def save(self) -> None:
        if not self._dirty:
            return
        self.store.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.store.with_name(f"{self.store.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump({"version": CACHE_VERSION, "entries": self._entries}, handle, separators=(",", ":"))
        os.replace(tmp, self.store)
        self._dirty = False
