"""Cache keys that must not skip needed work (issue 8, defects 4 and 12), through `run`, `--dry-run --json`
and `status --json`: input order, resources that reach a step, env-keyed profile variables, --rehash,
sources detected after `cd DIR &&`."""

from __future__ import annotations

import json
import os
from pathlib import Path

from runhelp import repropack, to_run, write_project

GATHER = """\
[project]
name = "order"
[[steps]]
name = "make"
run = "echo {{s}} > {{outputs}}"
foreach = {{ s = [{values}] }}
outputs = ["out/{{s}}.txt"]
[[steps]]
name = "gather"
run = "xargs cat < {{inputs:list}} > {{outputs}}"
inputs = ["out/{{s}}.txt"]
outputs = ["all.txt"]
"""


def _gather(root: Path, values: list[str]) -> Path:
    return write_project(root, GATHER.format(values=", ".join(f'"{v}"' for v in values)))


def _reasons(root: Path, *extra: str) -> dict[str, list[str]]:
    done = repropack(root, "run", "--dry-run", "--json", *extra, check=True)
    return {e["id"]: e["reasons"] for e in json.loads(done.stdout)["to_run"]}


def _status(root: Path) -> dict[str, str]:
    data = json.loads(repropack(root, "status", "--json", check=True).stdout)
    return {iid: entry.get("state") for iid, entry in data["instances"].items()}


def test_defect04_inputs_list_order_is_part_of_the_key(tmp_path):
    root = _gather(tmp_path / "p", ["a", "b", "c"])
    repropack(root, "run", check=True)
    assert (root / "all.txt").read_text() == "a\nb\nc\n"
    _gather(root, ["c", "b", "a"])
    assert _reasons(root) == {"gather": ["changed input order"]}
    repropack(root, "run", check=True)
    assert (root / "all.txt").read_text() == "c\nb\na\n"
    assert _status(root)["gather"] == "done"
    assert to_run(root) == []


def test_defect04_a_new_gathered_input_reruns_the_gather(tmp_path):
    root = _gather(tmp_path / "p", ["a", "b"])
    repropack(root, "run", check=True)
    _gather(root, ["a", "b", "d"])
    assert set(to_run(root)) == {"make[s=d]", "gather"}
    repropack(root, "run", check=True)
    assert (root / "all.txt").read_text() == "a\nb\nd\n"


def test_defect04_named_input_order_is_part_of_the_key(tmp_path):
    manifest = """\
    [project]
    name = "named"
    [[steps]]
    name = "join"
    run = "cat {{inputs:list}} > {{outputs}}"
    inputs = {{ first = "{first}", second = "{second}" }}
    outputs = ["list.txt"]
    """
    files = {"x.txt": "x\n", "y.txt": "y\n"}
    root = write_project(tmp_path / "p", manifest.format(first="x.txt", second="y.txt"), files)
    repropack(root, "run", check=True)
    write_project(root, manifest.format(first="y.txt", second="x.txt"))
    assert _reasons(root) == {"join": ["changed input order"]}
    repropack(root, "run", check=True)
    assert (root / "list.txt").read_text().split() == ["y.txt", "x.txt"]


def test_defect04_cpus_reach_the_step_and_are_in_the_key(tmp_path):
    manifest = """\
    [project]
    name = "cpus"
    [[steps]]
    name = "threads"
    run = "echo $OMP_NUM_THREADS > {{outputs}}"
    outputs = ["threads.txt"]
    resources = {{ cpus = {cpus} }}
    """
    root = write_project(tmp_path / "p", manifest.format(cpus=1))
    repropack(root, "run", check=True)
    write_project(root, manifest.format(cpus=2))
    assert _reasons(root) == {"threads": ["changed cpus"]}
    repropack(root, "run", check=True)
    assert (root / "threads.txt").read_text() == "2\n"


def test_defect04_params_and_module_values_in_paths_only_still_rerun(tmp_path):
    manifest = """\
    [project]
    name = "params"
    [params]
    src = "{src}"
    [[steps]]
    name = "copy"
    run = "cat {{inputs}} > {{outputs}}"
    inputs = ["{{params.src}}"]
    outputs = ["copy.txt"]
    """
    root = write_project(tmp_path / "p", manifest.format(src="a.txt"), {"a.txt": "A\n", "b.txt": "B\n"})
    repropack(root, "run", check=True)
    assert to_run(root, "--param", "src=b.txt") == ["copy"]
    repropack(root, "run", "--param", "src=b.txt", check=True)
    assert (root / "copy.txt").read_text() == "B\n"


ENV = """\
[project]
name = "env"
[profiles.local]
env = ["PLAIN"]
env-keyed = ["FOO", "TOKEN"]
[[steps]]
name = "show"
run = "echo ${{FOO:-unset}} > {{outputs}}; test -n \\"${{TOKEN:-}}\\""
outputs = ["foo.txt"]
"""


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FOO", "TOKEN", "PLAIN")}
    env.update(values)
    return env


def test_defect12_env_keyed_variable_change_reruns(tmp_path):
    root = write_project(tmp_path / "p", ENV.format())
    repropack(root, "run", check=True, env=_env(FOO="one", TOKEN="t"))
    assert (root / "foo.txt").read_text() == "one\n"
    assert repropack(root, "run", "--dry-run", "--json", env=_env(FOO="one", TOKEN="t")).stdout.count('"show"') == 0
    done = repropack(root, "run", "--dry-run", "--json", check=True, env=_env(FOO="two", TOKEN="t"))
    assert json.loads(done.stdout)["to_run"] == [{"id": "show", "reasons": ["changed env FOO"]}]
    repropack(root, "run", check=True, env=_env(FOO="two", TOKEN="t"))
    assert (root / "foo.txt").read_text() == "two\n"
    assert _status(root)["show"] == "done"
    # unset is a value of its own; a plain `env` variable is passed but not keyed
    again = repropack(root, "run", "--json", check=True, env=_env(FOO="two", TOKEN="t", PLAIN="changed"))
    assert json.loads(again.stdout)["counts"]["skipped"] == 1
    done = repropack(root, "run", "--dry-run", "--json", check=True, env=_env(TOKEN="t"))
    assert json.loads(done.stdout)["to_run"] == [{"id": "show", "reasons": ["changed env FOO"]}]


def test_defect12_env_keyed_values_never_reach_a_record(tmp_path):
    root = write_project(tmp_path / "p", ENV.format())
    secret, other = "hunter2-Zq81", "tok-x7Y4u"
    repropack(root, "run", check=True, env=_env(FOO=secret, TOKEN=other))
    repropack(root, "run", "--dry-run", "--json", check=True, env=_env(FOO=secret + "x", TOKEN=other))
    outputs = [repropack(root, *cmd, check=True, env=_env(FOO=secret, TOKEN=other)).stdout
               for cmd in (("status", "--json"), ("run", "--json"), ("report", "--json"))]
    assert not any(secret in text or other in text for text in outputs)
    leaked = []
    for path in (root / ".repropack").rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if path.name != "stdout" and (secret.encode() in data or other.encode() in data):
                leaked.append(str(path.relative_to(root)))
    assert leaked == []
    assert (root / "foo.txt").read_text() == secret + "\n"  # the step itself did see it


def test_defect12_env_keyed_is_checked_like_every_key(tmp_path):
    bad = """\
    [project]
    name = "bad"
    [profiles.local]
    env-keyd = ["FOO"]
    [profiles.other]
    env-keyed = ["FOO", "1BAD", "FOO"]
    [[steps]]
    name = "s"
    run = "true"
    """
    root = write_project(tmp_path / "p", bad)
    done = repropack(root, "check")
    assert done.returncode == 3  # an invalid manifest
    lines = done.stdout.splitlines() + done.stderr.splitlines()
    assert any("profiles.local.env-keyd" in x and "did you mean 'env-keyed'" in x for x in lines), lines
    assert any("profiles.other.env-keyed[1]" in x and "'1BAD' is not an environment variable name" in x
               for x in lines), lines
    assert any("profiles.other.env-keyed[2]" in x and "'FOO' is listed twice" in x for x in lines), lines


COPY = """\
[project]
name = "copy"
[[steps]]
name = "copy"
run = "cat {inputs} > {outputs}"
inputs = ["in.txt"]
outputs = ["out.txt"]
"""


def _edit_keeping_stamp(path: Path, data: bytes) -> None:
    """Same inode, same size, the mtime set back: what `touch -r` after an edit leaves."""
    st = os.stat(path)
    with open(path, "r+b") as handle:
        handle.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_defect12_same_size_edit_with_mtime_restored_is_seen(tmp_path):
    root = write_project(tmp_path / "p", COPY, {"in.txt": "aaaa\n"})
    repropack(root, "run", check=True)
    _edit_keeping_stamp(root / "out.txt", b"zzzz\n")
    assert repropack(root, "verify").returncode != 0  # verify reads every output ...
    assert _reasons(root) == {"copy": ["output out.txt modified"]}  # ... and so does run's decision now
    repropack(root, "run", check=True)
    assert repropack(root, "verify").returncode == 0
    _edit_keeping_stamp(root / "in.txt", b"bbbb\n")
    assert _reasons(root) == {"copy": ["changed input in.txt"]}
    repropack(root, "run", check=True)
    assert (root / "out.txt").read_text() == "bbbb\n"


def test_defect12_rehash_reads_every_file_again(tmp_path):
    root = write_project(tmp_path / "p", COPY, {"in.txt": "aaaa\n"})
    repropack(root, "run", check=True)
    # A hash cache that vouches for a content the file no longer has: what a file system whose
    # timestamps cannot be trusted (or an edit that restored every stamp) leaves behind.
    cache = root / ".repropack" / "cache" / "filehash.json"
    old = cache.read_text()
    (root / "in.txt").write_text("bbbb\n")
    repropack(root, "run", "--dry-run", check=True)  # caches the edited file's stamp
    stale = json.loads(cache.read_text())
    stale["entries"]["in.txt"][-1] = json.loads(old)["entries"]["in.txt"][-1]
    cache.write_text(json.dumps(stale))
    assert to_run(root) == []  # trusted stamps: nothing seen
    assert _reasons(root, "--rehash") == {"copy": ["changed input in.txt"]}
    done = json.loads(repropack(root, "run", "--rehash", "--json", check=True).stdout)
    assert done["counts"]["done"] == 1
    assert (root / "out.txt").read_text() == "bbbb\n"
    assert to_run(root) == []


def test_defect12_source_after_cd_is_detected(tmp_path):
    root = write_project(tmp_path / "p", """\
    [project]
    name = "cd"
    [[steps]]
    name = "a"
    run = "(cd scripts && ./s.sh) > {outputs}"
    outputs = ["a.txt"]
    [[steps]]
    name = "b"
    run = "cd tools; bash run.sh > ../b.tmp && cd .. && mv b.tmp {outputs}"
    outputs = ["b.txt"]
    """, {"scripts/s.sh": "#!/bin/sh\necho one\n", "tools/run.sh": "echo b1\n"})
    os.chmod(root / "scripts/s.sh", 0o755)
    repropack(root, "run", check=True)
    assert to_run(root) == []
    (root / "scripts/s.sh").write_text("#!/bin/sh\necho two\n")
    (root / "tools/run.sh").write_text("echo b2\n")
    assert _reasons(root) == {"a": ["changed source scripts/s.sh"], "b": ["changed source tools/run.sh"]}
    repropack(root, "run", check=True)
    assert (root / "a.txt").read_text() == "two\n"
    assert (root / "b.txt").read_text() == "b2\n"


def test_defect04_an_expect_added_later_is_checked_not_skipped(tmp_path):
    manifest = """\
    [project]
    name = "expect"
    [[steps]]
    name = "make"
    run = "echo made > {{outputs}}"
    outputs = ["made.txt"]
    {expect}
    """
    root = write_project(tmp_path / "p", manifest.format(expect=""))
    repropack(root, "run", check=True)
    write_project(root, manifest.format(expect='expect = { "made.txt" = "sha256:' + "0" * 64 + '" }'))
    assert _reasons(root) == {"make": ["output made.txt does not match its expect digest"]}
    done = repropack(root, "run", "--json")
    assert done.returncode != 0 and json.loads(done.stdout)["instances"]["make"]["failure"] == "expect"


def test_defect12_a_script_named_by_a_foreach_value_is_a_source_of_its_instance(tmp_path):
    root = write_project(tmp_path / "p", """\
    [project]
    name = "tools"
    [[steps]]
    name = "use"
    run = "bash scripts/{tool}.sh > {outputs}"
    foreach = { tool = ["a", "b"] }
    outputs = ["out/{tool}.txt"]
    """, {"scripts/a.sh": "echo a1\n", "scripts/b.sh": "echo b1\n"})
    repropack(root, "run", check=True)
    (root / "scripts/a.sh").write_text("echo a2\n")
    assert _reasons(root) == {"use[tool=a]": ["changed source scripts/a.sh"]}
    repropack(root, "run", check=True)
    assert (root / "out/a.txt").read_text() == "a2\n"
