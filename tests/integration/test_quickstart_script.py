"""scripts/quickstart, the README's first command, piped as CI and logs see it: plain text, no escape codes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.network
def test_quickstart_piped_prints_no_escape_codes(tmp_path):
    env = {**os.environ, "REPROPACK_QUICKSTART_BUILD": "0", "REPROPACK_QUICKSTART_DIR": str(tmp_path / "qs")}
    done = subprocess.run(["bash", str(REPO / "scripts" / "quickstart")], env=env, capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "\x1b" not in done.stdout and "\x1b" not in done.stderr
    assert "\n$ repropack run\n" in done.stdout and "quickstart finished in" in done.stdout
    assert (tmp_path / "qs" / "results" / "summary.tsv").exists()
