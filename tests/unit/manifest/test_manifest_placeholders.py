import shlex
import subprocess

import pytest

from repropack.manifest import placeholders as ph


def keys(template, shell=True):
    return [p.key for p in ph.placeholders(ph.parse(template, shell=shell))]


def test_parse_every_kind():
    template = "run {inputs} {outputs} {inputs.reads} {outputs.bam} {sample} {params.min_q} {resources.cpus} {attempt} {inputs:list}"
    assert keys(template) == [
        "inputs", "outputs", "inputs.reads", "outputs.bam", "sample", "params.min_q", "resources.cpus", "attempt",
        "inputs:list",
    ]


def test_escapes_and_shell_parameters():
    segments = ph.parse("awk '{{print $1}}' {inputs} | sed s/${HOME}/x/", shell=True)
    assert ph.render(segments, {"inputs": "a.txt"}) == "awk '{print $1}' a.txt | sed s/${HOME}/x/"
    assert ph.unparse(segments) == "awk '{{print $1}}' {inputs} | sed s/${{HOME}}/x/"
    assert ph.render(ph.parse(ph.unparse(segments), shell=True), {"inputs": "a.txt"}) == \
        ph.render(segments, {"inputs": "a.txt"})


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("cat '{inputs}'", "inside single quotes"),
        ('cat "{inputs}"', "inside double quotes"),
        ('echo "prefix {sample} suffix"', "inside double quotes"),
        ("awk '{print $1}'", "not a placeholder"),
        ("echo {inputs", "unclosed"),
        ("echo }", "unmatched"),
        ("echo {params}", "needs a name"),
        ("echo {resources.memory}", "only {resources.cpus}"),
        ("echo {outputs:list}", "only {inputs:list}"),
        ("echo {sample.x}", "takes no"),
        ("echo { inputs }", "not a placeholder"),
    ],
)
def test_refused(template, fragment):
    with pytest.raises(ph.PlaceholderError, match=fragment.replace("{", r"\{").replace("}", r"\}")):
        ph.parse(template, shell=True)


def test_quotes_closed_before_placeholder_are_fine():
    assert keys("echo 'a b' {inputs} \"c\" {outputs}") == ["inputs", "outputs"]
    assert keys("echo it\\'s {inputs}") == ["inputs"]


def test_paths_do_not_track_quotes():
    assert keys("data/it's {sample}.txt", shell=False) == ["sample"]


HOSTILE = ["a b", "it's", '"q"', "$(touch pwned)", "`touch pwned`", "a;touch pwned", "line\nbreak", "-rf", "*", ""]


@pytest.mark.parametrize("value", HOSTILE)
def test_quoted_values_reach_the_command_inert(value, tmp_path):
    segments = ph.parse("printf '%s\\n' {sample}", shell=True)
    command = ph.render(segments, {"sample": ph.quote(value)})
    out = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert out == value + "\n"
    assert not (tmp_path / "pwned").exists()


def test_paths_with_leading_dash_become_relative():
    assert ph.quote_path("-x.txt") == "./-x.txt"
    assert shlex.split(ph.quote_paths(["a b.txt", "-n"])) == ["a b.txt", "./-n"]


def test_numbers_render_as_written():
    assert ph.value_text(1) == "1"
    assert ph.value_text(1.5) == "1.5"
    assert ph.value_text(True) == "true"
    assert ph.value_text("x") == "x"
