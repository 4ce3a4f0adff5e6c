import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from repropack.redact import MASK, MIN_VALUE, Redactor, project_redactor, secret_params, secret_values

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


def test_argv_masks_the_value_after_a_secret_flag_and_assignments():
    argv = ["repropack", "run", "--password", "hunter22", "--param", "token=S3CRETVALUE", "--param", "n=3"]
    assert Redactor().argv(argv) == ["repropack", "run", "--password", "***", "--param", "token=***", "--param", "n=3"]


def test_secret_params_by_name_at_any_depth_without_recursion():
    params = {"db": {"password": "pw-123456", "host": "db.example"}, "api_token": ["tok-aaaaaa", "tok-bbbbbb"],
              "n": 3, "secret_flag": True, "label": "plain-value"}
    assert sorted(secret_params(params)) == ["pw-123456", "tok-aaaaaa", "tok-bbbbbb"]
    deep: dict = {"leaf": "x"}
    for _ in range(5000):  # deeper than Python's recursion limit
        deep = {"inner": deep}
    assert secret_params({"secret": deep}) == [] and secret_params({"token": {"a": deep, "b": "deep-secret"}}) == ["deep-secret"]


def test_project_redactor_masks_profile_env_and_secret_params(monkeypatch):
    from types import SimpleNamespace

    monkeypatch.setenv("MY_SERVICE_CREDENTIAL", "cred-value-42")
    manifest = SimpleNamespace(params={"token": "default-token", "name": "visible-name"},
                               profiles={"p": SimpleNamespace(env=("MY_SERVICE_CREDENTIAL", "HOME"))})
    redact = project_redactor(manifest, {"token": "override-token"})
    text = redact("cred-value-42 default-token override-token visible-name")
    assert text == "*** *** *** visible-name"


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.text(min_size=MIN_VALUE, max_size=40).filter(lambda s: s.strip() == s and s), st.text(max_size=30),
       st.text(max_size=30))
def test_a_known_value_never_survives_in_any_text(secret, before, after):
    out = Redactor([secret])(before + secret + after)
    assert secret not in out.replace(MASK, "\0")


def test_digests_let_a_later_reader_mask_values_it_never_saw():
    record = Redactor(["first-secret-1", "second-secret-22"]).digests()
    assert "first-secret-1" not in str(record) and "second-secret-22" not in str(record)
    later = Redactor(digests=record)
    assert later("a first-secret-1 b second-secret-22second-secret-22 c") == "a *** b *** c"
    assert Redactor(digests={"salt": "zz", "values": [[7, 1]]})("left alone") == "left alone"  # junk ignored
