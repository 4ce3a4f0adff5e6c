from repropack.manifest.positions import Positions, format_key

SOURCE = '''# comment
requires-repropack = ">=0.1"
[project]
name = "x"   # trailing
[environments.default]
pip = [
  "a",   # one
  "b",
]
[[steps]]
name = "one"
run = """multi
line { not a key = 1 }"""
foreach = { sample = ["s0", "s1"], n = [1, 2.50] }
[steps.resources]
cpus = 2
[[steps]]
name = "two"
expect = { "results/x.tsv" = "sha256:00" }
outputs = [{ path = "o.txt", pipe = true }]
'''


def test_positions_of_keys_and_elements():
    p = Positions(SOURCE)
    assert p.find(("requires-repropack",)) == (2, 1)
    assert p.find(("project", "name")) == (4, 1)
    assert p.find(("environments", "default", "pip", 1)) == (8, 3)
    assert p.find(("steps", 0)) == (10, 1)
    assert p.find(("steps", 0, "run")) == (12, 1)
    assert p.find(("steps", 0, "foreach", "sample", 1)) == (14, 29)
    assert p.find(("steps", 0, "resources", "cpus")) == (16, 1)
    assert p.find(("steps", 1, "name")) == (18, 1)
    assert p.find(("steps", 1, "expect", "results/x.tsv")) == (19, 12)
    assert p.find(("steps", 1, "outputs", 0, "pipe")) == (20, 30)


def test_unknown_key_falls_back_to_enclosing():
    p = Positions(SOURCE)
    assert p.find(("steps", 1, "nothing", "deeper")) == (17, 1)
    assert p.find(("absent",)) is None


def test_numbers_as_written():
    p = Positions(SOURCE)
    assert p.raw(("steps", 0, "foreach", "n", 1)) == "2.50"


def test_inside_a_string():
    text = 'run = "cat {inputs}"\n'
    assert Positions(text).inside(("run",), "cat {inputs}", 4) == (1, 12)


def test_format_key():
    assert format_key(("steps", 1, "run")) == "steps[1].run"
    assert format_key(("steps", 0, "expect", "a/b.txt")) == 'steps[0].expect."a/b.txt"'


def test_large_array_is_indexed():
    values = ", ".join(f'"v{i}"' for i in range(10000))
    p = Positions(f"[[steps]]\nforeach = {{ k = [{values}] }}\n")
    assert p.find(("steps", 0, "foreach", "k", 9999))[0] == 2
