"""Modules and parameters end to end through the CLI: examples/modules (one module used twice,
its pip environment in the project's lock), ``--param`` reruns, and ``[data]`` feeding a module."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from runhelp import CLI, done_ids, journal, repropack, to_run, write_project

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "modules"
STEPS = {"english.count", "english.table", "french.count", "french.table", "compare"}
LEFT_BY_RUNS = {"english", "results", ".repropack", "locks", "repropack.lock", "__pycache__"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One artifact cache for this file's tests, so PyPI is asked once."""
    return tmp_path_factory.mktemp("artifact-cache")


@pytest.fixture
def env(cache, monkeypatch) -> dict[str, str]:
    monkeypatch.setenv("REPROPACK_CACHE", str(cache))
    return dict(os.environ)


@pytest.fixture
def example(tmp_path) -> Path:
    """A copy of examples/modules as a clean clone has it (no lock, no outputs)."""
    target = tmp_path / "modules"
    shutil.copytree(EXAMPLE, target, ignore=lambda d, names: LEFT_BY_RUNS & set(names) if d == str(EXAMPLE)
                    else {"__pycache__"} & set(names))
    return target


def _run_ids(root: Path) -> set[str]:
    """Ids the last run executed (not skipped)."""
    records = journal(root)
    last = max(i for i, r in enumerate(records) if r["t"] == "run")
    return {r["id"] for r in records[last:] if r["t"] == "done"}


def _table(path: Path) -> list[tuple[str, int]]:
    """The rows of a tabulate 'simple' table: header, dashes, then `word count` lines."""
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].split() == ["word", "count"] and re.fullmatch(r"-+ +-+", lines[1]), lines[:2]
    return [(word, int(n)) for word, n in (line.split() for line in lines[2:])]


def _locked_and_run(root: Path, env: dict[str, str]) -> None:
    repropack(root, "lock", check=True, env=env)
    repropack(root, "run", check=True, env=env)


@pytest.mark.network
def test_example_locks_the_module_environment_and_runs_both_uses(example, env):
    root = example
    assert "ok (5 steps, 5 instances, 1 environments)" in repropack(root, "check", check=True).stdout
    repropack(root, "lock", check=True, env=env)
    lock = tomllib.loads((root / "repropack.lock").read_text())
    assert list(lock["environments"]) == ["wordfreq.default"]  # one module, two uses: one environment
    locked = lock["environments"]["wordfreq.default"]
    assert locked["pip"] == ["tabulate ==0.9.0"]
    pylock_path = "locks/wordfreq.default/pylock.linux-64.toml"
    assert list(locked["files"]) == [pylock_path]
    pylock = tomllib.loads((root / pylock_path).read_text())
    (package,) = pylock["packages"]
    assert (package["name"], package["version"]) == ("tabulate", "0.9.0")
    assert all(re.fullmatch(r"[0-9a-f]{64}", w["hashes"]["sha256"]) for w in package["wheels"])

    repropack(root, "fetch", check=True, env=env)
    created = repropack(root, "env", "create", "wordfreq.default", check=True, env=env)
    assert ".repropack/envs/wordfreq.default-" in created.stdout + created.stderr
    code = "import sys, tabulate; print(tabulate.__version__, sys.prefix)"
    probe = subprocess.run([*CLI, "env", "run", "-C", str(root), "wordfreq.default", "--", "python", "-c", code],
                           capture_output=True, text=True, check=True, env=env, timeout=120)
    version, prefix = probe.stdout.split()
    assert version == "0.9.0" and Path(prefix).parent == root / ".repropack" / "envs"

    done = json.loads(repropack(root, "run", "--json", check=True, env=env).stdout)
    assert done["counts"]["done"] == 5 and set(done["instances"]) == STEPS
    # Namespaced outputs: `english` under its default prefix, `french` under its `prefix`.
    for path in ("english/counts.tsv", "english/top.txt", "results/french/counts.tsv", "results/french/top.txt"):
        assert (root / path).is_file(), path
    # Each use with its own parameters (english: min_length 4, top 5; french: min_length 1, top 8).
    english, french = _table(root / "english/top.txt"), _table(root / "results/french/top.txt")
    assert len(english) == 5 and all(len(w) >= 4 for w, _ in english)
    assert len(french) == 8 and any(len(w) < 4 for w, _ in french)
    assert min(len(line.split("\t")[0]) for line in (root / "english/counts.tsv").read_text().splitlines()) == 4
    # tabulate is not in the repository's own venv: the table step ran in the module's environment.
    script = repropack(root, "logs", "--script", "english.table", check=True).stdout
    assert "python modules/wordfreq/scripts/table.py --top 5 english/counts.tsv " in script
    compare = (root / "results/compare.md").read_text(encoding="utf-8")
    assert compare.startswith("# Most frequent words\n")
    assert compare.index("## english\n") < compare.index("## french\n")
    assert (root / "english/top.txt").read_text() in compare and (root / "results/french/top.txt").read_text() in compare
    assert to_run(root) == []


@pytest.mark.network
def test_module_parameter_reruns_only_that_use(example, env):
    root = example
    _locked_and_run(root, env)
    french_before = (root / "results/french/top.txt").read_bytes()
    assert to_run(root, "--param", "english.top=3") == ["english.table", "compare"]
    assert to_run(root, "--param", "french.min_length=3") == ["french.count", "french.table", "compare"]

    repropack(root, "run", "--param", "english.top=3", check=True, env=env)
    assert _run_ids(root) == {"english.table", "compare"}
    assert len(_table(root / "english/top.txt")) == 3
    assert (root / "results/french/top.txt").read_bytes() == french_before
    assert to_run(root, "--param", "english.top=3") == []
    # Back to the manifest's value: the same steps again, the other use still up to date.
    assert to_run(root) == ["english.table", "compare"]

    # The use name selects the use's steps only.
    repropack(root, "run", "french", "--param", "french.top=2", check=True, env=env)
    assert _run_ids(root) == {"french.table"}
    assert len(_table(root / "results/french/top.txt")) == 2


@pytest.mark.network
def test_project_parameter_reruns_only_the_steps_that_use_it(example, env):
    root = example
    _locked_and_run(root, env)
    title = "Top words; $(touch pwned) `touch pwned2` -x"
    assert to_run(root, "--param", f"title={title}") == ["compare"]
    repropack(root, "run", "--param", f"title={title}", check=True, env=env)
    assert _run_ids(root) == {"compare"}
    assert (root / "results/compare.md").read_text(encoding="utf-8").startswith(f"# {title}\n")
    assert not (root / "pwned").exists() and not (root / "pwned2").exists()
    assert to_run(root, "--param", f"title={title}") == []


@pytest.mark.network
def test_module_script_and_environment_are_part_of_every_use(example, env):
    root = example
    _locked_and_run(root, env)
    module = root / "modules" / "wordfreq"
    with open(module / "scripts" / "table.py", "a") as handle:
        handle.write("# an edit\n")
    assert to_run(root) == ["english.table", "french.table", "compare"]
    repropack(root, "run", check=True, env=env)

    toml = module / "module.toml"
    toml.write_text(toml.read_text().replace("tabulate ==0.9.0", "tabulate ==0.8.10"))
    stale = repropack(root, "run", env=env)
    assert stale.returncode == 4
    assert "repropack.lock is stale: environment wordfreq.default changed" in stale.stderr
    repropack(root, "lock", check=True, env=env)
    lock = tomllib.loads((root / "repropack.lock").read_text())
    assert lock["environments"]["wordfreq.default"]["pip"] == ["tabulate ==0.8.10"]
    plan = json.loads(repropack(root, "run", "--dry-run", "--json", check=True, env=env).stdout)["to_run"]
    assert [e["id"] for e in plan if "changed environment" in e["reasons"]] == ["english.count", "french.count"]
    assert {e["id"] for e in plan} == STEPS


@pytest.mark.parametrize("key", ["english.topp", "english.nope", "top", "nope"])
def test_unknown_param_is_one_line_naming_it(example, key):
    root = example
    for args in (("run", "--dry-run"), ("run",)):
        done = repropack(root, *args, "--param", f"{key}=3")
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and key in lines[0], done.stderr
    assert not (root / ".repropack" / "journal.jsonl").exists()  # nothing ran
    assert not (root / "english").exists()


def test_unknown_param_suggests_the_nearest_name(example):
    done = repropack(example, "run", "--dry-run", "--param", "english.topp=3")
    assert "did you mean 'english.top'?" in done.stderr


def test_wrong_param_type_for_a_module_parameter(example):
    done = repropack(example, "run", "--dry-run", "--param", "english.top=many")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --param english.top=many: expected an integer (the default is 5)"


# [data] feeding a module (no environment: offline) ------------------------------------------

CORPUS = "the cat and the dog and the bird\n" * 50
CORPUS_SHA = hashlib.sha256(CORPUS.encode()).hexdigest()

MODULE = """
[params]
text = { description = "a project path" }
top = 2
[[steps]]
name = "count"
run = "tr -s ' ' '\\\\n' < {inputs} | sort | uniq -c | sort -rn | head -n {params.top} > {outputs}"
inputs = ["{params.text}"]
outputs = ["{prefix}/top.txt"]
"""


def _data_project(root: Path, url: str, sha: str) -> Path:
    return write_project(root, f"""
        [project]
        name = "data-module"
        [data.corpus]
        url = "{url}"
        sha256 = "{sha}"
        path = "data/corpus.txt"
        [[steps]]
        name = "one"
        use = "modules/top.toml"
        with = {{ text = "data/corpus.txt", top = 1 }}
        [[steps]]
        name = "two"
        use = "modules/top.toml"
        with = {{ text = "data/corpus.txt" }}
        [[steps]]
        name = "both"
        run = "cat {{inputs}} > {{outputs}}"
        inputs = ["one/top.txt", "two/top.txt"]
        outputs = ["both.txt"]
    """, {"modules/top.toml": MODULE})


def test_data_is_fetched_and_verified_before_the_module_steps(tmp_path):
    source = tmp_path / "corpus.txt"
    source.write_text(CORPUS)
    root = _data_project(tmp_path / "p", source.as_uri(), CORPUS_SHA)
    assert to_run(root) == ["one.count", "two.count", "both"]
    repropack(root, "run", check=True)
    assert (root / "data/corpus.txt").read_text() == CORPUS
    assert (root / "one/top.txt").read_text().split() == ["150", "the"]
    assert (root / "two/top.txt").read_text().split() == ["150", "the", "100", "and"]
    assert done_ids(root) == {"one.count", "two.count", "both"}
    assert to_run(root, "--param", "two.top=3") == ["two.count", "both"]


def test_wrong_data_digest_is_one_line_and_no_step_runs(tmp_path):
    source = tmp_path / "corpus.txt"
    source.write_text(CORPUS)
    wrong = "ab" * 32
    root = _data_project(tmp_path / "p", source.as_uri(), wrong)
    done = repropack(root, "run")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "data.corpus" in lines[0] and CORPUS_SHA in lines[0] and wrong in lines[0]
    assert not (root / "data/corpus.txt").exists() and not list((root / "data").glob(".*"))
    assert done_ids(root) == set() and not (root / "one").exists() and not (root / "both.txt").exists()
    assert not (root / ".repropack" / "runs").exists()

    # A file already at the path with other content (and no url): also refused, naming both digests.
    (root / "data").mkdir(exist_ok=True)
    (root / "data/corpus.txt").write_text("something else\n")
    other = hashlib.sha256(b"something else\n").hexdigest()
    text = (root / "repropack.toml").read_text()
    (root / "repropack.toml").write_text(re.sub(r'url = ".*"\n', "", text).replace(wrong, CORPUS_SHA))
    done = repropack(root, "run")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "data.corpus" in lines[0] and other in lines[0] and CORPUS_SHA in lines[0], done.stderr
    assert done_ids(root) == set()
