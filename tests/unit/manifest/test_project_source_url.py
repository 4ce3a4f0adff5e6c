"""[project] source and url: optional web addresses, checked like every key (they become OCI labels)."""

from __future__ import annotations

import pytest

from repropack.errors import ManifestErrors
from repropack.manifest import load_manifest


def _write(tmp_path, extra: str):
    (tmp_path / "repropack.toml").write_text(f'[project]\nname = "x"\n{extra}\n')
    return tmp_path


def test_both_keys_are_read(tmp_path):
    project = load_manifest(_write(tmp_path, 'source = "https://github.com/me/x"\nurl = "http://example.org/x"')).project
    assert (project.source, project.url) == ("https://github.com/me/x", "http://example.org/x")
    assert load_manifest(_write(tmp_path, "")).project.source is None


@pytest.mark.parametrize("line, message", [
    ('source = "github.com/me/x"', "project.source: 'github.com/me/x' is not a web address"),
    ('url = "file:///srv/x"', "project.url: 'file:///srv/x' is not a web address"),
    ("url = 3", "project.url: expected a string, found an integer"),
    ('sources = "https://x.org"', "project.sources: unknown key 'sources' (did you mean 'source'?)"),
])
def test_bad_values_name_file_line_and_key(tmp_path, line, message):
    with pytest.raises(ManifestErrors) as info:
        load_manifest(_write(tmp_path, line))
    error = info.value.errors[0]
    assert error.line == 3 and message in str(error), str(error)
