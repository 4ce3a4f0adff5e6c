import subprocess
import sys

from repropack.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_version(capsys):
    from repropack import __version__

    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_help_imports_no_heavy_module():
    code = (
        "import sys; from repropack.cli import main; main(['--help']);"
        "heavy = [m for m in ('docker', 'rattler', 'conda_lock', 'rich', 'spython', 'tomlkit') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
