"""Shared test helpers.

Engine tests: mark them ``@pytest.mark.docker`` (or apptainer, slurm, registry, network, browser, prometheus);
the hook below skips them with the reason when the engine is unreachable, or fails them when
REPROPACK_REQUIRE_ENGINES=1. Inside a test, ``require_engine("docker")`` does the same by hand.
The checks live in tests/_engines.py (``from _engines import LOCAL_BASE_IMAGE, require_engine``).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # makes `_engines` importable from any test

from _engines import LOCAL_BASE_IMAGE, REGISTRY, require_base_image, require_engine, require_marked_engines  # noqa: E402

__all__ = ["LOCAL_BASE_IMAGE", "REGISTRY", "REPO", "require_engine"]

REPO = Path(__file__).resolve().parent.parent


def pytest_runtest_setup(item: pytest.Item) -> None:
    require_marked_engines(item)


@pytest.fixture(scope="session")
def base_image() -> str:
    """`local/debian:bookworm-python` (python3, no pip, no venv), checked present in Docker."""
    return require_base_image()


@pytest.fixture(scope="session")
def base_sif(tmp_path_factory, base_image):
    """The base image as a SIF, converted once per session (about a minute); runhelp.share_sif links it in."""
    import subprocess

    from repropack.run.environments import SIF_CACHE

    image_id = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", base_image],
                              capture_output=True, text=True, check=True).stdout.strip()
    name = image_id.replace(":", "-") + ".sif"
    target = tmp_path_factory.mktemp("sif") / name
    subprocess.run(["apptainer", "build", "-F", str(target), f"docker-daemon:{base_image}"],
                   capture_output=True, check=True, timeout=1800)
    return target, SIF_CACHE / name


@pytest.fixture
def tmp_project(tmp_path: Path) -> Callable[[str], Path]:
    """Copy a project to tmp_path and return the copy's path.

    The argument is a name under examples/ or tests/fixtures/ (examples first), or a path.
    Left out, as in a clean clone: the top-level results/ and .repropack/ of earlier local runs.
    """

    def copy(name: str) -> Path:
        candidates = [REPO / "examples" / name, REPO / "tests" / "fixtures" / name, Path(name)]
        source = next((c for c in candidates if c.is_dir()), None)
        if source is None:
            raise FileNotFoundError(f"no project {name!r} under examples/ or tests/fixtures/")
        target = tmp_path / source.name
        top = str(source)

        def ignore(directory: str, names: list[str]) -> set[str]:
            skip = {"__pycache__"} | ({"results", ".repropack"} if directory == top else set())
            return skip & set(names)

        shutil.copytree(source, target, ignore=ignore)
        return target

    return copy
