"""Issue 8, defects 1 and 3, as a property: whatever foreach values, parameter values and output
patterns a manifest holds (dots, slashes, '..', empty, unicode, spaces, shell metacharacters, names
repropack owns) and whatever links the project holds (to a sibling inside, to a folder outside),
``repropack check`` and ``repropack run`` on the host either refuse with a one-line error and change
nothing, or run, and then nothing outside the declared outputs changed, inside or outside the
project, and no path outside the declared inputs and outputs appears in the records or the hash cache.

A sentinel tree (path, inode, size, mtime, sha256; links not followed) of the project and of a
folder beside it is taken before and after. Fixed seed, bounded examples: about a minute."""

from __future__ import annotations

import json
import os
import posixpath
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, event, example, given, settings
from hypothesis import strategies as st
from runhelp import journal, repropack, write_project
from sentinel import changed, snapshot

TRICKY = [".", "..", "", "./", "a/b", "a//b", "../x", "/tmp/x", "x/..", "sp ace", "ü-ñ", "$(touch PWNED)", "a;b",
          "`id`", "-n", ".hidden", "a..b", "...", "repropack.toml", ".repropack", "locks", "repropack.lock", "*", "~"]
PIECES = st.sampled_from(["a", ".", "/", "..", " ", "ü", "$", ";", "'", '"', "-", "_", "x", "*", "\\"])
PLAIN = st.lists(st.sampled_from(["a", "ü", "é", " ", "$", "(", ")", ";", "'", '"', "-", "_", "*", "`", "&", "."]),
                 min_size=1, max_size=6).map("".join)
# mostly values a run should accept (it must then touch only its outputs), some it must refuse
VALUE = st.one_of(PLAIN, PLAIN, st.sampled_from(TRICKY), st.lists(PIECES, max_size=5).map("".join))
TEMPLATES = [
    "out/{s}.txt", "out/{s}", "{s}", "out/{s}/f.txt", "{params.d}/{s}.txt", "out/{params.d}/{s}",
    "inside/{s}.txt", "away/{s}.txt", "out/{params.d}{s}",
]
STATE = frozenset({"project/.repropack"})  # read through status and the records below
INPUTS = ["data/in.txt", "inside/in.txt", "away/in.txt", "{params.d}", "data/{s}"]


def _toml(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def _layout(base: Path) -> tuple[Path, Path]:
    """A project with a link to a sibling folder inside it and a link to a folder beside it."""
    root, outside = base / "project", base / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "in.txt").write_text("outside\n")
    (outside / "sub" / "deep.txt").write_text("deep\n")
    write_project(root, "[project]\nname = 'p'\n", {"data/in.txt": "in\n", "out/notes.txt": "mine\n"})
    os.symlink("data", root / "inside")
    os.symlink("../outside", root / "away")
    return root, outside


def _manifest(values: list[str], param: str, template: str, inputs: str | None, other: bool) -> str:
    text = f"[project]\nname = 'p'\n\n[params]\nd = {_toml(param)}\n"
    if other:
        text += '\n[[steps]]\nname = "other"\noutputs = ["out/keep.txt"]\nrun = "echo keep > {outputs}"\n'
    text += f'\n[[steps]]\nname = "s"\nforeach = {{ s = [{", ".join(_toml(v) for v in values)}] }}\n'
    text += f"outputs = [{_toml(template)}]\n"
    if inputs is not None:
        text += f"inputs = [{_toml(inputs)}]\n"
    reads = "cat {inputs} && " if inputs is not None else ""
    text += f"run = \"({reads}printf '%s\\\\n' {{s}}) > {{outputs}}\"\n"
    return text


def _declared(template: str, values: list[str], param: str) -> set[str]:
    """The paths an accepted run may write: each rendered output, spelled as the file system will."""
    return {posixpath.normpath(template.replace("{params.d}", param).replace("{s}", v)) for v in values}


def _allowed(root: Path, base: Path, outputs: set[str]) -> set[str]:
    """Sentinel paths (relative to base) an output may add or change: itself and the folders made for it."""
    allowed = set()
    for rel in outputs:
        real = Path(os.path.realpath(root / rel)).relative_to(base.resolve())
        allowed |= {str(real), *(str(p) for p in real.parents if str(p) != ".")}
    return allowed


def _record_paths(root: Path) -> tuple[set[str], str]:
    """Every project path named by the journal's done records and the hash cache; and all record text."""
    paths: set[str] = set()
    for record in journal(root):
        for field in ("inputs", "outputs"):  # a dict (path -> digest) or a list of paths
            if isinstance(record.get(field), (dict, list)):
                paths |= set(record[field])
        paths |= set((record.get("parts") or {}).get("files") or {})
    cache = root / ".repropack" / "cache" / "filehash.json"
    if cache.exists():
        paths |= set(json.loads(cache.read_text())["entries"])
    text = (root / ".repropack" / "journal.jsonl").read_text(errors="replace") \
        if (root / ".repropack" / "journal.jsonl").exists() else ""
    return paths, text + (cache.read_text() if cache.exists() else "")


def _no_traceback(done) -> None:
    assert "Traceback" not in done.stderr + done.stdout, done.stderr


@pytest.mark.timeout(300)
@settings(max_examples=25, deadline=None, derandomize=True, database=None, phases=(Phase.explicit, Phase.generate),
          suppress_health_check=[HealthCheck.too_slow])  # no shrinking: the time stays bounded
# the reproductions, always tried first
@example(values=["."], param="out", template="out/{s}", inputs=None, other=True)
@example(values=[".", "x"], param="out", template="out/{s}/f.txt", inputs=None, other=True)
@example(values=["a"], param="out", template="away/{s}.txt", inputs="inside/in.txt", other=False)
@example(values=["a b", "c"], param="./out", template="{params.d}/{s}.txt", inputs="away/in.txt", other=False)
@given(values=st.lists(VALUE, min_size=1, max_size=2, unique=True), param=VALUE, template=st.sampled_from(TEMPLATES),
       inputs=st.one_of(st.none(), st.sampled_from(INPUTS)), other=st.booleans())
def test_defect01_03_property_refused_or_only_declared_outputs_change(values, param, template, inputs, other):
    with tempfile.TemporaryDirectory(prefix="repropack-property-") as tmp:
        base = Path(tmp)
        root, outside = _layout(base)
        (root / "repropack.toml").write_text(_manifest(values, param, template, inputs, other), encoding="utf-8")
        before = snapshot(base, STATE)
        checked = repropack(root, "check")
        _no_traceback(checked)
        ran = repropack(root, "run")
        _no_traceback(ran)
        after = snapshot(base, STATE)
        event(f"check exit {checked.returncode}, run exit {ran.returncode}")
        if checked.returncode != 0:  # refused at check: run refuses the same way, and nothing changed
            assert checked.returncode == ran.returncode == 3, (checked.stdout, ran.stderr)
            assert not changed(before, after), changed(before, after)
            return
        assert ran.returncode in (0, 1), ran.stderr
        outputs = _declared(template, values, param) | ({"out/keep.txt"} if other else set())
        assert changed(before, after) <= _allowed(root, base, outputs), (changed(before, after), outputs)
        if ran.returncode == 1:  # refused when planned (a link leading out, a missing input): one line
            assert ran.stderr.startswith("error: ") and len(ran.stderr.strip().splitlines()) == 1, ran.stderr
            assert not changed(before, after), changed(before, after)
            return
        status = json.loads(repropack(root, "status", "--json", check=True).stdout)
        assert {e["state"] for e in status["instances"].values()} == {"done"}, status
        named, text = _record_paths(root)
        declared_inputs = {posixpath.normpath(inputs.replace("{params.d}", param).replace("{s}", v))
                           for v in values} if inputs else set()
        assert named <= outputs | declared_inputs, named
        assert str(outside) not in text and "outside\\n" not in text and "deep" not in text
