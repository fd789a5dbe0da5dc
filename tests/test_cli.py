"""The one command line: every subcommand answers --help, the original scripts are thin wrappers of
it, and configuration mistakes end with exit code 2 and a message naming what is allowed."""

import subprocess
import sys

import pytest

from maskrcnn_body.cli.main import COMMANDS, main

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: maskrcnn-body {command}")


def test_top_level_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(c in out for c in COMMANDS)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "train.batch_size=abc"], "train.batch_size: 'abc' is not a valid value; expected int"),
        (["--set", "model.keypoint_head.kind=bones"], "one of 'heatmap', 'shared', 'regression', 'none'"),
        (["--set", "model.mask_roi_size=28"], "it is model.mask_head.roi_size since config version 2"),
        (["--set", "nonsense"], "expected SECTION.FIELD=VALUE"),
        (["--config", "/no/such/config.json"], "config file /no/such/config.json not found"),
    ],
)
def test_config_mistakes_exit_2_with_the_choices(args, message, capsys):
    assert main(["train", *args, "--list-config"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_bad_flag_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--preset", "nope"])
    assert e.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err


def test_list_config_and_saved_config_round_trip(tmp_path, capsys):
    assert main(["train", "--preset", "r50_fpn", "--set", "model.mask_head.roi_size=28", "--list-config"]) == 0
    out = capsys.readouterr().out
    assert "model.mask_head.roi_size" in out and "28" in out and "RoIAlign output side" in out
    from maskrcnn_body.config import get_config

    path = tmp_path / "config.json"
    path.write_text(get_config("cpu_small", **{"train.batch_size": 3}).to_json())
    assert main(["train", "--config", str(path), "--list-config"]) == 0
    assert "train.batch_size" in capsys.readouterr().out


@pytest.mark.parametrize(
    "script, command",
    [
        ("train/train.py", "train"),
        ("train/serve.py", "serve"),
        ("train/test.py", "serve"),  # the original's name of the server script
        ("draw/metric.py", "metric"),
        ("convert_data/convert_coco.py", "convert coco"),
    ],
)
def test_original_scripts_are_the_same_commands(script, command):
    r = subprocess.run([sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith(f"usage: maskrcnn-body {command}"), r.stderr


def test_installed_console_script():
    import shutil

    exe = shutil.which("maskrcnn-body")
    if exe is None:
        pytest.skip("maskrcnn-body not on PATH (package not installed with pip)")
    r = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    from maskrcnn_body.version import __version__

    assert r.returncode == 0 and r.stdout.strip() == f"maskrcnn-body {__version__}"


def test_top_level_help_gives_each_commands_whole_summary(capsys):
    import importlib

    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    for command in COMMANDS:
        doc = importlib.import_module(f"maskrcnn_body.cli.{command}").__doc__
        summary = " ".join(doc.strip().split("\n\n")[0].split())
        assert f"{command} {summary}" in out, command  # not cut at the docstring's first line break


def _subparser(command):
    from maskrcnn_body.cli.main import build_parser

    parser = build_parser([command])
    return next(a for a in parser._actions if a.dest == "command").choices[command]


def test_boolean_flags_are_conventional_and_the_absl_spellings_still_work(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    out = capsys.readouterr().out
    assert "--show, --no-show" in out and "[SHOW]" not in out and "--noshow" not in out
    p = _subparser("predict")
    for argv, want in [
        ([], False),
        (["--show"], True),
        (["--no-show"], False),
        (["--show", "--noshow"], False),
        (["--show=true"], True),
        (["--show=false"], False),
    ]:
        assert p.parse_args(argv).show is want, argv
    assert p.parse_args(["--noprogress"]).progress is False


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_with_a_default_shows_it(command):
    import argparse

    p = _subparser(command)
    parsers = [p] + [sub for a in p._actions if isinstance(a, argparse._SubParsersAction) for sub in a.choices.values()]
    for parser in parsers:
        fmt = parser._get_formatter()
        for a in parser._actions:
            if not a.option_strings or a.help == argparse.SUPPRESS or a.default in (None, argparse.SUPPRESS, []):
                continue
            if isinstance(a, (argparse._HelpAction, argparse._VersionAction)):
                continue
            text = fmt._get_help_string(a) % {"default": a.default}
            assert "default" in text.lower(), (command, a.option_strings, text)


def test_predict_help_shows_the_drawing_and_tracker_settings(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in ("--kpt_thr KPT_THR", "(default: 0.05)", "--legend, --no-legend", "--track_max_lost", "(default: 30)"):
        assert text in out, text


def test_an_internal_error_keeps_its_traceback_and_says_where_to_report(monkeypatch, capsys):
    """A ValueError that is not the user's (a bug) is not turned into a one-line user error: the traceback is
    printed, then the hint; exit 70. A UserError stays one line with exit 2."""
    import importlib

    cli_main = importlib.import_module("maskrcnn_body.cli.main")
    from maskrcnn_body.errors import EXIT_BUG, EXIT_USER_ERROR, InvalidArgument

    def bug(args):
        raise ValueError("shapes (3,) and (4,) not aligned")

    def users(args):
        raise InvalidArgument("--alpha must be in [0, 1], got 2")

    class Args:
        _run = staticmethod(bug)

    assert cli_main.run_command(Args()) == EXIT_BUG
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "not aligned" in err and "please report it" in err
    Args._run = staticmethod(users)
    assert cli_main.run_command(Args()) == EXIT_USER_ERROR
    assert capsys.readouterr().err == "error: --alpha must be in [0, 1], got 2\n"
