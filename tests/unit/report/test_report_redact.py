import pytest

from repropack.report.redact import Redactor, secret_values

redact = Redactor()


@pytest.mark.parametrize("text, secret", [
    ("git clone https://alice:p4ssw0rd@git.example.org/repo", "p4ssw0rd"),
    ("pip install --index-url https://ghp_abcdefghijklmnopqrstuvwxyz0123456789@pypi.example/simple", "ghp_abc"),
    ("conda install -c https://conda.anaconda.org/t/ab-12cdef3456/private", "ab-12cdef3456"),
    ("curl -H 'Authorization: Bearer eyJhbGciOi.payload.sig' https://api", "eyJhbGciOi"),
    ("export API_TOKEN=tok_98765", "tok_98765"),
    ('{"api_key": "k-123456789"}', "k-123456789"),
    ("fetch https://h/x?token=abcdef123&x=1", "abcdef123"),
    ("mytool --password hunter2 --verbose", "hunter2"),
    ("aws s3 cp with AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
])
def test_known_secret_shapes_are_masked(text, secret):
    out = redact(text)
    assert secret not in out and "***" in out


def test_ordinary_text_is_left_alone():
    text = "python scripts/count.py --min-length 3 data/alpha.txt results/alpha.count https://example.org/x"
    assert redact(text) == text


def test_values_of_secret_environment_variables():
    env = {"MY_TOKEN": "abcdef123456", "HOME": "/root", "PASSPHRASE_FILE": "x", "SHORT_SECRET": "abc"}
    assert secret_values(env) == ["abcdef123456"]
    assert Redactor(secret_values(env))("value abcdef123456 here") == "value *** here"
