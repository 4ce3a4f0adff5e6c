"""The conda-lock file text: identical to conda-lock's own writer, and rendered without its heavy imports."""

import json
import subprocess
import sys
from pathlib import Path

from repropack.lock.condalock import (
    CONDA_LOCK_ADVICE,
    OUR_ADVICE,
    build_lockfile,
    conda_lock_text,
    read_conda_packages,
    render_conda_lock,
)
from repropack.lock.solve_conda import CondaPackage
from repropack.lock.solve_pypi import PipPackage

CHANNEL = "https://conda.anaconda.org/conda-forge"


def _conda(name, version, platform, subdir, depends=()):
    fn = f"{name}-{version}-h1234567_0.conda"
    return CondaPackage(name=name, version=version, build="h1234567_0", platform=platform, subdir=subdir,
                        url=f"{CHANNEL}/{subdir}/{fn}", channel=CHANNEL, sha256="ab" * 32, md5="cd" * 16,
                        depends=tuple(depends))


def _inputs():
    platforms = ["linux-64", "osx-arm64"]
    conda, pip = {}, {}
    for platform in platforms:
        conda[platform] = [
            _conda("zlib", "1.3.1", platform, platform),
            _conda("python", "3.11.10", platform, platform, ["zlib >=1.3.1,<2.0a0", "__glibc >=2.17,<3.0.a0"]),
            _conda("yes", "1.10", platform, "noarch", ["python >=3.9", "a-very-long-dependency-name-for-folding "
                                                       ">=1.2.3,<2.0.0a0,!=1.5.0 *_cpython_with_a_long_build_string"]),
            _conda("_libgcc_mutex", "0.1", platform, platform),
            _conda("__glibc", "2.28", platform, platform),  # virtual: conda-lock's writer drops it
        ]
        pip[platform] = [PipPackage("tabulate", "0.9.0", platform,
                                    "https://files.pythonhosted.org/packages/40/44/4a5f08c96eb108af5cb50b41f76142f0afa"
                                    "346dfa99d5296fe7202a11854/tabulate-0.9.0-py3-none-any.whl", "ef" * 32)]
    return dict(channels=[CHANNEL], platforms=platforms, conda=conda, pip=pip,
                content_hash={p: "sha256:" + "0" * 64 for p in platforms}, sources=["../../repropack.toml"])


def test_text_is_byte_identical_to_conda_locks_own_writer(tmp_path: Path):
    from conda_lock.lockfile import write_conda_lock_file

    ours = conda_lock_text(build_lockfile(**_inputs()), "conda-lock.yml")
    theirs = tmp_path / "conda-lock.yml"
    write_conda_lock_file(build_lockfile(**_inputs()), theirs, metadata_choices=[])
    expected = theirs.read_text(encoding="utf-8")
    for conda_lock_says, we_say in zip(CONDA_LOCK_ADVICE, OUR_ADVICE):  # the advice only: conda-lock can't read repropack.toml
        line = "# " + conda_lock_says.format(name="conda-lock.yml", sources="-f ../../repropack.toml") + "\n"
        assert line in expected
        expected = expected.replace(line, "# " + we_say + "\n")
    assert ours == expected
    assert "#     repropack lock\n" in ours and "conda-lock -f" not in ours
    assert "__glibc" not in ours.split("package:", 1)[1].split("dependencies")[0]  # the virtual package was dropped


def test_other_categories_are_refused():
    lockfile = build_lockfile(**_inputs())
    lockfile.package[0].categories = {"dev"}
    try:
        conda_lock_text(lockfile, "conda-lock.yml")
    except ValueError as exc:
        assert "main" in str(exc)
    else:
        raise AssertionError("a dev package was written")


def test_read_back_gives_the_locked_conda_packages(tmp_path: Path):
    path = tmp_path / "conda-lock.yml"
    inputs = _inputs()
    path.write_text(render_conda_lock(path, **inputs))
    got = read_conda_packages(path)
    want = [p for plat in inputs["platforms"] for p in inputs["conda"][plat] if not p.name.startswith("__")]
    assert sorted((p.name, p.platform, p.url, p.sha256, p.md5) for p in got) == \
        sorted((p.name, p.platform, p.url, p.sha256, p.md5) for p in want)


RENDER_IN_FRESH_PROCESS = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from test_condalock_writer import _inputs
from repropack.lock.condalock import render_conda_lock
path = Path(sys.argv[1])
path.write_text(render_conda_lock(path, **_inputs()))
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("conda_lock", "requests", "filelock", "platformdirs"))
from conda_lock.lockfile import parse_conda_lock_file  # the deferred package __init__ runs now
parsed = parse_conda_lock_file(path)
import conda_lock
print(json.dumps({"loaded": loaded, "parsed": sorted({p.name for p in parsed.package}),
                  "version": conda_lock.__version__}))
"""


def test_rendering_loads_only_conda_locks_models_and_its_parser_still_works(tmp_path: Path):
    path = tmp_path / "conda-lock.yml"
    proc = subprocess.run([sys.executable, "-c", RENDER_IN_FRESH_PROCESS, str(path), str(Path(__file__).parent)],
                          capture_output=True, text=True, check=True)
    result = json.loads(proc.stdout)
    assert "conda_lock.lockfile.v2prelim.models" in result["loaded"]
    heavy = [m for m in result["loaded"]
             if m.split(".")[0] in ("requests", "filelock", "platformdirs")
             or m in ("conda_lock.lookup", "conda_lock.conda_lock", "conda_lock.models.lock_spec")]
    assert heavy == []
    assert result["parsed"] == ["_libgcc_mutex", "python", "tabulate", "yes", "zlib"]
    assert result["version"][0].isdigit()  # the package __init__ ran when asked
