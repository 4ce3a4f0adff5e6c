import pytest

from repropack.errors import EnvironmentCreateError
from repropack.lock.materializer import find_python


def test_missing_interpreter_is_named():
    with pytest.raises(EnvironmentCreateError) as info:
        find_python("3.97", "analysis")
    assert "environment analysis needs Python 3.97" in str(info.value)
    assert "python3.97" in str(info.value)


def test_matching_interpreter_is_found():
    import subprocess

    path = find_python("3.11")
    out = subprocess.run([path, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
    assert out.stdout.strip() == "(3, 11)"
