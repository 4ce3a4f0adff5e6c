"""Issue 8 defects 7 and 11, unit level: safe text, checksum-list paths, --param texts, group demands."""

from __future__ import annotations

import os
import posixpath
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repropack.cli._text import safe
from repropack.errors import UsageError, VerifyError
from repropack.manifest.patterns import _typed
from repropack.run.checksums import parse_checksums, project_path
from repropack.run.scheduler import Capacity, Demand, Scheduler

BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def _unsafe(c: str) -> bool:
    return (unicodedata.category(c) == "Cc" and c not in "\n\t") or c in BIDI


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_defect11_safe_text_holds_no_control_or_bidi_character(text):
    shown = safe(text)
    assert not any(_unsafe(c) for c in shown)
    assert "\n" not in safe(text, one_line=True)
    if not any(_unsafe(c) for c in text):
        assert shown == text  # ordinary text is printed as it is


def test_defect11_safe_text_examples():
    assert safe("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert safe("x\u202ey") == "x\\u202ey"
    assert safe("two\nlines\t!") == "two\nlines\t!"
    assert safe("two\nlines", one_line=True) == "two\\x0alines"
    assert safe(None) == ""


SEGMENTS = st.sampled_from(["a", "b c", "\u00e9", ".", "..", "", "out", "link", "inlink"])


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("proj")
    (root / "out").mkdir()
    (root / "out" / "a").write_text("x")
    os.symlink("/etc", root / "link")  # leads outside
    os.symlink("out", root / "inlink")  # stays inside
    return root


@settings(derandomize=True, max_examples=300, deadline=None)
@given(absolute=st.booleans(), parts=st.lists(SEGMENTS, min_size=1, max_size=5))
def test_defect11_checksum_paths_stay_inside_the_project(project, absolute, parts):
    path = ("/" if absolute else "") + "/".join(parts)
    rel, problem = project_path(project, path)
    escapes = path.startswith("/") or ".." in path.split("/") or not posixpath.normpath(path).strip("./")
    if escapes:
        assert problem is not None
        return
    if problem is None:
        real = os.path.realpath(project / rel)
        assert os.path.commonpath([real, os.path.realpath(project)]) == os.path.realpath(project)
        assert rel == "/".join(p for p in path.split("/") if p not in ("", "."))
    else:
        assert "link" in path.split("/")[: path.split("/").index("link") + 1]


def test_defect11_checksum_list_names_each_refused_line(project):
    digest = "0" * 64
    text = f"{digest}  out/a\n{digest}  /etc/passwd\n{digest}  ../x\n"
    with pytest.raises(VerifyError) as info:
        parse_checksums(text, source="SUMS", root=project)
    message = str(info.value)
    assert message.startswith("SUMS:2: '/etc/passwd' is absolute") and "(and 1 more: SUMS:3)" in message
    assert parse_checksums(f"{digest}  ./out//a\n", root=project) == {"out/a": digest}


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.from_regex(r"\A[+-]?[0-9]{1,12}\Z"))
def test_defect11_int_param_keeps_its_text(text):
    value, shown = _typed("n", text, 1)
    assert value == int(text) and shown == text


@pytest.mark.parametrize("raw", ["1_000", "\u0661", "1.5", "", "0x10"])
def test_defect11_int_param_refuses_what_is_not_written_as_an_integer(raw):
    with pytest.raises(UsageError, match="expected an integer"):
        _typed("n", raw, 1)


def test_defect07_a_group_takes_its_members_cpus_memory_and_job_slots_at_once():
    pair = Demand.together([Demand(cpus=1, memory=10), Demand(cpus=2, memory=5)])
    assert pair == Demand(cpus=3, memory=15, gpus=0, jobs=2)
    scheduler = Scheduler(Capacity(cpus=8, memory=100, jobs=2))
    assert scheduler.never_fits(pair) is None
    assert "3 jobs at once" in scheduler.never_fits(Demand.together([Demand()] * 3))
    scheduler.push(0, "single", Demand())
    scheduler.push(1, "pair", pair)
    assert [iid for iid, _ in scheduler.take()] == ["single"]  # the pair needs both slots
    scheduler.release("single")
    assert [iid for iid, _ in scheduler.take()] == ["pair"]
