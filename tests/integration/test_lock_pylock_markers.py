"""pylock files say what they are for: one platform (`environments`), one Python (exact
`requires-python`), their index; packaging's own PEP 751 reader and uv refuse the wrong target up front."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from _lockhelp import manifest

from repropack.lock import lock_project
from repropack.lock.solve_pypi import uv_bin

pytestmark = pytest.mark.network

# packaging's PEP 751 model (packaging >= 26): the project pins an older packaging (snakemake, in the
# bench group, needs < 26), so the check runs in a scratch target with the real newest release.
CHECK = textwrap.dedent("""
    import json, sys, tomllib
    from packaging.markers import default_environment
    from packaging.pylock import Pylock, PylockSelectError
    lock = Pylock.from_dict(tomllib.load(open(sys.argv[1], "rb")))
    out = {"requires_python": str(lock.requires_python), "environments": [str(m) for m in lock.environments]}
    here = default_environment()
    targets = {"linux-x86_64-py311": {**here, "sys_platform": "linux", "platform_machine": "x86_64",
                                      "python_version": "3.11", "python_full_version": "3.11.7"},
               "darwin-arm64-py311": {**here, "sys_platform": "darwin", "platform_machine": "arm64",
                                      "python_version": "3.11", "python_full_version": "3.11.7"},
               "linux-x86_64-py312": {**here, "sys_platform": "linux", "platform_machine": "x86_64",
                                      "python_version": "3.12", "python_full_version": "3.12.1"}}
    for name, env in targets.items():
        try:
            out[name] = sorted(p.name for p, _ in lock.select(environment=env))
        except PylockSelectError as exc:
            out[name] = "refused: " + str(exc)
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def packaging26(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("packaging26")
    subprocess.run([uv_bin(), "pip", "install", "--quiet", "--no-config", "--python", sys.executable,
                    "--target", str(target), "packaging>=26"], check=True, capture_output=True, timeout=300)
    return target


@pytest.fixture(scope="module")
def locked(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("p") / "p"
    m = manifest(root, {"default": {"python": "3.11", "pip": ("tabulate ==0.9.0", "markupsafe ==2.1.5"),
                                    "platforms": ("linux-64", "osx-arm64")}})
    lock_project(m)
    return root / "locks" / "default"


def test_the_pylock_names_its_platform_python_and_index(locked):
    data = tomllib.loads((locked / "pylock.linux-64.toml").read_text())
    assert data["requires-python"] == "==3.11.*"
    assert data["environments"] == ["sys_platform == 'linux' and platform_machine == 'x86_64'"]
    assert {p["index"] for p in data["packages"]} == {"https://pypi.org/simple"}
    markupsafe = next(p for p in data["packages"] if p["name"] == "markupsafe")
    assert all("-cp311-" in w["url"] for w in markupsafe["wheels"])  # why the Python must be exact
    mac = tomllib.loads((locked / "pylock.osx-arm64.toml").read_text())
    assert mac["environments"] == ["sys_platform == 'darwin' and platform_machine == 'arm64'"]


def test_packaging_validates_it_and_refuses_the_wrong_platform_or_python(locked, packaging26):
    done = subprocess.run([sys.executable, "-c", CHECK, str(locked / "pylock.linux-64.toml")],
                          env={"PYTHONPATH": str(packaging26)}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["requires_python"] == "==3.11.*"
    assert result["environments"] == ['sys_platform == "linux" and platform_machine == "x86_64"']
    assert result["linux-x86_64-py311"] == ["markupsafe", "tabulate"]
    assert result["darwin-arm64-py311"].startswith("refused: ") and "environments" in result["darwin-arm64-py311"]
    assert result["linux-x86_64-py312"].startswith("refused: ") and "==3.11.*" in result["linux-x86_64-py312"]


def test_uv_refuses_the_wrong_platform_up_front(locked, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([uv_bin(), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    args = [uv_bin(), "pip", "install", "--dry-run", "--no-config", "--python", str(venv / "bin/python")]
    ok = subprocess.run([*args, "-r", str(locked / "pylock.linux-64.toml")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    wrong = subprocess.run([*args, "--python-platform", "aarch64-apple-darwin", "-r",
                            str(locked / "pylock.linux-64.toml")], capture_output=True, text=True)
    assert wrong.returncode != 0 and "not supported by the lockfile" in wrong.stderr


def test_a_relock_keeps_the_bytes(locked):
    """uv reads the described pylock back as its previous output: an unchanged relock writes nothing."""
    before = {p.name: p.read_bytes() for p in locked.iterdir()}
    m = manifest(locked.parent.parent, {"default": {"python": "3.11", "pip": ("tabulate ==0.9.0", "markupsafe ==2.1.5"),
                                                    "platforms": ("linux-64", "osx-arm64")}})
    assert lock_project(m).written == []
    assert {p.name: p.read_bytes() for p in locked.iterdir()} == before
