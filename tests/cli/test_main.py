import subprocess
import sys

import pytest

from cli.main import build_parser, discover_commands, main


def run_hmr(*args):
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True,
                          timeout=120)


def test_help_lists_every_command():
    commands = discover_commands()
    assert {"convert", "inspect", "store"} <= set(commands)
    out = run_hmr("--help")
    assert out.returncode == 0
    for name in commands:
        assert name in out.stdout


def test_every_command_has_help_with_an_example(capsys):
    commands = discover_commands()
    parser = build_parser(commands)
    for name, module in commands.items():
        assert module.HELP and module.EXAMPLE.startswith("hmr "), name
        with pytest.raises(SystemExit) as exc:
            parser.parse_args([name, "--help"])
        assert exc.value.code == 0
        text = capsys.readouterr().out
        assert "example:" in text and module.EXAMPLE in text, name


def test_errors_are_one_line_without_traceback(tmp_path):
    out = run_hmr("inspect", str(tmp_path / "missing.zarr"))
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("hmr inspect: error:") and "missing.zarr" in lines[0]
    assert "Traceback" not in out.stderr


def test_debug_shows_traceback(tmp_path):
    out = run_hmr("--debug", "inspect", str(tmp_path / "missing.zarr"))
    assert out.returncode != 0 and "Traceback" in out.stderr


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out
