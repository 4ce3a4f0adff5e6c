"""Installing wheels into a staged venv writes only in-image paths, the same bytes every time."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from repropack.build.wheels import install_wheel, make_venv
from repropack.errors import BuildError

PREFIX = "/opt/envs/demo"


def _wheel(path, members: dict[str, tuple[bytes, int]]):
    with zipfile.ZipFile(path, "w") as zf:
        for name, (content, mode) in members.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = mode << 16
            zf.writestr(info, content)
    return path


@pytest.fixture
def wheel(tmp_path):
    return _wheel(tmp_path / "demo-1.0-py3-none-any.whl", {
        "demo/__init__.py": (b"def main():\n    print('demo main')\n", 0o644),
        "demo-1.0.dist-info/METADATA": (b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n", 0o644),
        "demo-1.0.dist-info/WHEEL": (b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n", 0o644),
        "demo-1.0.dist-info/entry_points.txt": (b"[console_scripts]\nDemo-Tool = demo:main\n", 0o644),
        "demo-1.0.dist-info/RECORD": (b"stale,,\n", 0o644),
        "demo-1.0.data/scripts/helper": (b"#!python\nprint('helper')\n", 0o644),
        "demo-1.0.data/data/share/demo/readme.txt": (b"data file\n", 0o644),
    })


def _tree(root):
    out = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                out[rel] = ("link", os.readlink(path))
            elif os.path.isfile(path):
                out[rel] = (open(path, "rb").read(), os.stat(path).st_mode & 0o777)
    return out


def test_install_layout_scripts_and_record(tmp_path, wheel):
    stage = tmp_path / "stage"
    site = make_venv(stage, "/usr/bin/python3.11", "3.11")
    install_wheel(wheel, stage, PREFIX, "3.11")
    assert (stage / "pyvenv.cfg").read_text().startswith("home = /usr/bin\ninclude-system-site-packages = false\n")
    assert os.readlink(stage / "bin/python") == "/usr/bin/python3.11"
    assert os.readlink(stage / "bin/python3.11") == "python"
    assert (site / "demo/__init__.py").is_file()
    helper = (stage / "bin/helper").read_text()
    assert helper.startswith(f"#!{PREFIX}/bin/python\n") and os.access(stage / "bin/helper", os.X_OK)
    tool = (stage / "bin/Demo-Tool").read_text()
    assert tool.startswith(f"#!{PREFIX}/bin/python\n") and "from demo import main" in tool
    assert (stage / "share/demo/readme.txt").read_text() == "data file\n"
    record = (site / "demo-1.0.dist-info/RECORD").read_text().splitlines()
    assert "demo-1.0.dist-info/RECORD,," in record and "stale,," not in record
    assert any(line.startswith("../../../bin/Demo-Tool,sha256=") for line in record)
    assert (site / "demo-1.0.dist-info/INSTALLER").read_text() == "repropack\n"
    everything = "".join(str(v) for v in _tree(stage).values())
    assert str(tmp_path) not in everything  # nothing of the host's paths is written


def test_same_wheel_same_tree(tmp_path, wheel):
    trees = []
    for name, umask in (("a", 0o022), ("b", 0o077)):
        old = os.umask(umask)
        try:
            make_venv(tmp_path / name, "/usr/bin/python3.11", "3.11")
            install_wheel(wheel, tmp_path / name, PREFIX, "3.11")
        finally:
            os.umask(old)
        trees.append(_tree(tmp_path / name))
    assert trees[0] == trees[1]


def test_script_runs_with_a_real_interpreter(tmp_path, wheel):
    stage = tmp_path / "stage"
    make_venv(stage, sys.executable, f"{sys.version_info.major}.{sys.version_info.minor}")
    install_wheel(wheel, stage, str(stage), f"{sys.version_info.major}.{sys.version_info.minor}")
    out = subprocess.run([stage / "bin/Demo-Tool"], capture_output=True, text=True, check=True).stdout
    assert out == "demo main\n"


def test_escaping_member_refused(tmp_path):
    bad = _wheel(tmp_path / "bad-1.0-py3-none-any.whl", {
        "bad-1.0.dist-info/METADATA": (b"", 0o644), "../evil.py": (b"", 0o644)})
    make_venv(tmp_path / "s", "/usr/bin/python3.11", "3.11")
    with pytest.raises(BuildError, match="escapes"):
        install_wheel(bad, tmp_path / "s", PREFIX, "3.11")
    assert not (tmp_path / "evil.py").exists()
