"""Cache keys of step instances and the file-hash cache behind them.

A key (scheme ``KEY_SCHEME``, written ``k2:<sha256>``) is a hash over canonical JSON of
everything that reaches the step: the instance's expanded command with project-relative
paths (``key_material``), its environment's lock hash, the content hashes of its inputs and
of its sources, the input paths **in order** (they reach the step through ``{inputs:list}``
too), the output paths in order, its parameters, the cpus it is given (they reach it as
``OMP_NUM_THREADS`` and the like) and keyed digests of the profile's ``env-keyed``
variables. Nothing in it depends on where the project lives, on timestamps or on inodes, so
moving, copying or touching the project keeps every key.

Content hashes are cached in ``.repropack/cache/filehash.json`` by
project-relative path, size, mtime_ns, inode and ctime_ns: an unchanged file is not read
again, and a moved or touched file is rehashed (once) to the same digest. ``ctime`` cannot
be set back by a user, so an edit that keeps the size and restores the mtime is seen too.
``rehash=True`` (``run --rehash``) trusts no stamp recorded before this run.
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

from repropack.run.checksums import sha256_beneath
from repropack.run.rundir import removed_on_failure
from repropack.run.safepath import ProjectTree, UnsafePath
from repropack.run.statefiles import open_state

KEY_SCHEME = 2
CACHE_VERSION = 2  # 2: entries are [size, mtime_ns, inode, ctime_ns, digest]
# Per-file digests are kept in a record only up to this many files; beyond, the
# aggregate alone (a 100,000-input gather would otherwise bloat the journal).
DETAIL_LIMIT = 1000


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def scheme_of(key: Any) -> str:
    """``k1`` of ``k1:...``: the key scheme a recorded key was made with ("" if none)."""
    return key.split(":", 1)[0] if isinstance(key, str) and ":" in key else ""


def sequence_digest(paths: Iterable[str]) -> str:
    """One digest over paths in their order (the order reaches the step)."""
    return sha256_text("\0".join(paths))


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
    order: str = ""  # sequence_digest of the input paths in the instance's order
    outputs: str = ""  # sequence_digest of the output paths
    cpus: int = 1  # what the step is given (thread variables, {resources.cpus})
    env: Mapping[str, str] = field(default_factory=dict)  # env-keyed name -> keyed digest, never a value
    files: Mapping[str, str] = field(default_factory=dict)  # per-file digests (inputs + sources) when small

    @functools.cached_property
    def key(self) -> str:  # asked for by the planner, the instance record and the journal: computed once
        return f"k{KEY_SCHEME}:" + sha256_text(canonical({"scheme": KEY_SCHEME, **self._body()}))

    def _body(self) -> dict[str, Any]:
        return {"command": self.command, "environment": self.environment, "inputs": self.inputs,
                "sources": self.sources, "params": self.params, "order": self.order, "outputs": self.outputs,
                "cpus": self.cpus, "env": dict(self.env)}

    def to_record(self) -> dict[str, Any]:
        record = self._body()
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
    order: Iterable[str] = (),
    outputs: Iterable[str] = (),
    cpus: int = 1,
    env: Mapping[str, str] | None = None,
) -> KeyParts:
    """`inputs` maps each input to its digest; `order` is the inputs' paths as the step gets them."""
    files: dict[str, str] = {}
    if len(inputs) + len(sources) <= DETAIL_LIMIT:
        files = {**inputs, **sources}
    return KeyParts(
        command=sha256_text(key_material),
        environment=environment,
        inputs=files_digest(inputs),
        sources=files_digest(sources),
        params=_params_digest(params),
        order=sequence_digest(order),
        outputs=sequence_digest(outputs),
        cpus=cpus,
        env=dict(env or {}),
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
    if not isinstance(old, Mapping):  # a damaged record: say so rather than guess
        return ["changed key (its recorded parts are unreadable)"]
    reasons: list[str] = []
    if old.get("command") != new.command:
        reasons.append("changed command")
    if old.get("environment") != new.environment:
        reasons.append("changed environment")
    for part, label in (("inputs", "input"), ("sources", "source")):
        if old.get(part) != getattr(new, part):
            changed = _changed_files(old.get("files") or {}, new.files, label)
            reasons.extend(changed or [f"changed {label}"])
    if old.get("inputs") == new.inputs and old.get("order") != new.order:
        reasons.append("changed input order")
    if old.get("outputs") != new.outputs:
        reasons.append("changed outputs")
    if old.get("params") != new.params:
        reasons.append("changed params")
    if old.get("cpus") != new.cpus:
        reasons.append("changed cpus")
    old_env = old.get("env") if isinstance(old.get("env"), Mapping) else {}
    reasons.extend(f"changed env {name}" for name in sorted(set(old_env) | set(new.env))
                   if old_env.get(name) != new.env.get(name))
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
    """Content digests of project files, keyed by (path, size, mtime_ns, inode, ctime_ns).

    With ``rehash``, only digests computed by this process are trusted: every file is read once.
    """

    def __init__(self, root: Path, store: Path | None = None, *, rehash: bool = False):
        self.root = Path(root)
        self.store = store if store is not None else self.root / ".repropack" / "cache" / "filehash.json"
        self._entries: dict[str, list[Any]] = {}
        self._dirty = False
        self._fresh: set[str] | None = set() if rehash else None
        self._tree: ProjectTree | None = None
        self._load()

    @property
    def tree(self) -> ProjectTree:
        """The project root held open: inputs are stat'ed and hashed only where links stay inside it."""
        if self._tree is None:
            self._tree = ProjectTree(self.root)
        return self._tree

    def _load(self) -> None:
        try:
            with os.fdopen(open_state(self.store, os.O_RDONLY), "rb") as handle:  # a link there is refused
                data = json.loads(handle.read().decode("utf-8"))
        except (FileNotFoundError, ValueError, UnicodeDecodeError):
            return  # a lost or damaged cache costs one rehash, never a wrong answer
        if isinstance(data, dict) and data.get("version") == CACHE_VERSION and isinstance(data.get("entries"), dict):
            self._entries = data["entries"]

    @staticmethod
    def _stamp(st: os.stat_result) -> list[int]:
        return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]

    def lookup(self, rel: str) -> tuple[str | None, os.stat_result | None]:
        """(digest if cached and unchanged, stat) — stat None when the file is missing."""
        try:
            st = self.tree.stat_beneath(rel)  # UnsafePath when a link on the way leads outside
        except (FileNotFoundError, NotADirectoryError):
            return None, None
        entry = self._entries.get(rel)
        # The shape is checked too: a damaged or crafted entry costs a rehash, never a crash.
        if (type(entry) is list and len(entry) == 5 and entry[0] == st.st_size and entry[1] == st.st_mtime_ns
                and entry[2] == st.st_ino and entry[3] == st.st_ctime_ns and type(entry[4]) is str
                and (self._fresh is None or rel in self._fresh)):
            return entry[4], st
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
        for (rel, st), hexdigest in zip(todo, self._hash_inside([rel for rel, _ in todo])):
            self._store(rel, hexdigest, st)
            result[rel] = hexdigest
        return result

    def _hash_inside(self, rels: list[str]) -> list[str]:
        """Hash through descriptors opened beneath the root: what was checked is what is read."""
        return sha256_beneath(self.tree, rels)

    def known(self, rel: str) -> tuple[str, int] | None:
        """(digest, size) as last recorded, without a stat (for records of what was just hashed)."""
        entry = self._entries.get(rel)
        if type(entry) is list and len(entry) == 5 and type(entry[4]) is str and type(entry[0]) is int:
            return entry[4], entry[0]
        return None

    def digest(self, rel: str) -> str | None:
        return self.digests([rel], missing_ok=True).get(rel)

    def remember(self, rel: str, hexdigest: str, st: os.stat_result | None = None) -> None:
        """Record a digest we computed ourselves (outputs hashed right after a step).

        ``st`` is the stat the digest was computed under; a fresh stat replaces it when only its
        ctime differs (a rename into place changes the ctime, not the content).
        """
        try:
            now: os.stat_result | None = self.tree.stat_beneath(rel)
        except (OSError, UnsafePath):
            now = None
        if now is not None and (st is None or self._stamp(now)[:3] == self._stamp(st)[:3]):
            st = now
        if st is not None:
            self._store(rel, hexdigest, st)

    def _store(self, rel: str, hexdigest: str, st: os.stat_result) -> None:
        self._entries[rel] = [*self._stamp(st), hexdigest]
        if self._fresh is not None:
            self._fresh.add(rel)
        self._dirty = True

    def forget_missing(self) -> None:
        for rel in [r for r in self._entries if not (self.root / r).exists()]:
            del self._entries[rel]
            self._dirty = True

    def save(self) -> None:
        if not self._dirty:
            return
        tmp = self.store.with_name(f"{self.store.name}.{os.getpid()}.tmp")
        with removed_on_failure(tmp):  # a full disk: the old cache stays whole, no partial file is left
            with os.fdopen(open_state(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "w", encoding="utf-8") as handle:
                json.dump({"version": CACHE_VERSION, "entries": self._entries}, handle, separators=(",", ":"))
            os.replace(tmp, self.store)
        self._dirty = False
        if self._tree is not None:
            self._tree.close()
            self._tree = None
