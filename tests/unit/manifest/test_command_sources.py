"""Sources found in a step's command when `sources` is not declared (issue 8, defect 12)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repropack.manifest.cmdsources import MARKER, CommandSources, sources_in

FILES = ("s.sh", "scripts/s.sh", "scripts/lib/util.sh", "scripts/x.py", "tools/run.sh", "tools/a.R",
         "conf/run.yml", "data/in.txt", "top.py", "scripts/out.txt")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("proj")
    for rel in FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x\n")
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.sh").write_text("x\n")
    os.symlink(outside / "secret.sh", root / "link.sh")
    return root


@pytest.mark.parametrize("command, expected", [
    ("python scripts/x.py {}", ["scripts/x.py"]),
    ("./s.sh", ["s.sh"]),
    ("bash ./scripts/s.sh {}", ["scripts/s.sh"]),
    ("python3 top.py --config=conf/run.yml", ["top.py", "conf/run.yml"]),
    ("cd scripts && ./s.sh", ["scripts/s.sh"]),
    ("cd scripts && bash s.sh > {}", ["scripts/s.sh"]),
    ("cd scripts; python x.py", ["scripts/x.py"]),
    ("cd scripts\n./s.sh", ["scripts/s.sh"]),
    ("cd scripts || exit 1; sh lib/util.sh", ["scripts/lib/util.sh"]),
    ("cd scripts/lib && . ./util.sh && cd ../.. && ./s.sh", ["scripts/lib/util.sh", "s.sh"]),
    ("cd tools && Rscript a.R {}", ["tools/a.R"]),
    ("cd -P tools && bash run.sh", ["tools/run.sh"]),
    ("cd ./tools/ && source run.sh", ["tools/run.sh"]),
    ("(cd scripts && ./s.sh) > {}; ./s.sh", ["scripts/s.sh", "s.sh"]),
    ("(cd scripts && ./s.sh)|sort", ["scripts/s.sh"]),
    ("pushd tools >/dev/null && bash run.sh && popd", ["tools/run.sh"]),
    ("cd scripts && python ../top.py", ["top.py"]),
    ("cd scripts && python ../../escape.py", []),
    ("bash -c 'cd tools && ./run.sh'", ["tools/run.sh"]),
    ("FOO=1 cd scripts && ./s.sh", ["scripts/s.sh"]),
    ("if true; then cd scripts; fi; ./s.sh", ["scripts/s.sh"]),
    ("cd \"$DIR\" && ./s.sh", ["s.sh"]),            # unknown folder: tried against the project
    ("cd {} && ./s.sh", ["s.sh"]),
    ("cd scripts && cd && ./s.sh", ["s.sh"]),      # a bare cd: $HOME, not known
    ("cat < data/in.txt > {}", ["data/in.txt"]),
    ("cd scripts && echo hi > out.txt", []),       # written, not read
    ("echo cd scripts; ./s.sh", ["s.sh"]),         # `cd` that is an argument moves nothing
    ("./link.sh", []),                             # a symlink out of the project is not a source
    ("python /abs/top.py ~/s.sh $HOME/s.sh scripts/*.sh", []),
    ("awk '{{print}}' 'unclosed", []),
    ("cd scripts && ./missing.sh", []),
    ("# ./s.sh\ntrue", []),
])
def test_defect12_command_shapes(root, command, expected):
    assert list(sources_in(command.replace("{}", MARKER), root)) == expected


@settings(derandomize=True, max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(
    st.sampled_from(["cd", "scripts", "..", "../..", "./s.sh", "(", ")", "&&", "||", ";", "|", ">", "<", "\n", "'",
                     '"', "\\", "$", "bash", "-c", "pushd", "popd", "-", "=", "#", MARKER, "\x00x", "~", "/", "a" * 300]),
    st.text(max_size=12)), max_size=25))
def test_defect12_detection_never_crashes_and_stays_in_the_project(root, words):
    found = sources_in(" ".join(words), root)
    assert set(found) <= set(FILES)


def _step(run):
    from repropack.manifest.model import Step

    return Step(name="s", run=run)


def test_defect12_foreach_values_and_params_in_script_paths_are_filled_in_per_instance(root):
    sources = CommandSources(_step("python scripts/{tool}.py {inputs} && cd {where} && ./run.sh; bash {params.lib}"),
                             root, {"lib": "scripts/lib/util.sh"})
    assert sources.for_instance({"tool": "x", "where": "tools"}) == ("scripts/x.py", "scripts/lib/util.sh")
    assert sources.for_instance({"tool": "missing", "where": "tools"}) == ("scripts/lib/util.sh",)
    assert sources.for_instance({"tool": "../../etc/passwd", "where": "x"}) == ("scripts/lib/util.sh",)
    plain = CommandSources(_step("cd tools && bash run.sh {inputs} > {outputs}"), root)
    assert plain.templates == () and plain.for_instance({}) == ("tools/run.sh",)
