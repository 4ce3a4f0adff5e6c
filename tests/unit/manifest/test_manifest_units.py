import pytest

from repropack.manifest.model import Quantity
from repropack.manifest.units import UnitError, format_bytes, parse_bytes, parse_memory, parse_seconds, parse_time


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4 GB", 4 * 10**9),
        ("4GB", 4 * 10**9),
        ("4GiB", 4 * 2**30),
        ("4G", 4 * 2**30),  # SLURM: a bare letter is binary
        ("512M", 512 * 2**20),
        ("512 MiB", 512 * 2**20),
        ("1.5 GB", 1_500_000_000),
        ("100kB", 100_000),
        ("2 TB", 2 * 10**12),
        ("10 B", 10),
        ("4gb", 4 * 10**9),
    ],
)
def test_bytes(text, value):
    assert parse_bytes(text) == value


@pytest.mark.parametrize("text", ["4 parsecs", "4", "GB", "", "-1GB", "0GB", "4 G B", "four GB"])
def test_bad_bytes(text):
    with pytest.raises(UnitError):
        parse_bytes(text)


def test_bad_unit_message_names_the_unit():
    with pytest.raises(UnitError, match="'parsecs'"):
        parse_bytes("4 parsecs")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1h30m", 5400),
        ("10m", 600),
        ("90 s", 90),
        ("2d", 172800),
        ("1h 30m 15s", 5415),
        ("2 hours", 7200),
        ("01:30:00", 5400),
        ("1-00:00:00", 86400),
        ("1-12", 86400 + 12 * 3600),
        ("30:00", 1800),  # SLURM: minutes:seconds
        ("1.5h", 5400),
    ],
)
def test_seconds(text, value):
    assert parse_seconds(text) == value


@pytest.mark.parametrize("text", ["soon", "", "10", "1h30x", "0s", "h"])
def test_bad_seconds(text):
    with pytest.raises(UnitError):
        parse_seconds(text)


def test_per_attempt():
    assert parse_memory("2GB * attempt") == Quantity(2 * 10**9, per_attempt=True)
    assert parse_memory("2GB*attempt").at(3) == 6 * 10**9
    assert parse_memory("attempt * 1GiB").at(2) == 2 * 2**30
    assert parse_time("1h * attempt").at(2) == 7200
    assert parse_memory("2GB").at(5) == 2 * 10**9


def test_format_bytes():
    assert format_bytes(4 * 2**30) == "4GiB"
    assert format_bytes(4 * 10**9) == "4GB"
    assert format_bytes(3) == "3B"
