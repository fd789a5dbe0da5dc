"""`maskrcnn-body serve` flags that need no model: the removed --workers is refused at once, with a reason."""

import pytest

from maskrcnn_body.cli.main import main as cli_main
from maskrcnn_body.cli.serve import WORKERS_REMOVED


@pytest.mark.parametrize("argv", [["--workers", "4"], ["--workers=1"], ["--workers"]])
def test_workers_flag_is_refused_before_any_model_is_loaded(argv, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:  # the train dir does not exist: the flag is refused before it is read
        cli_main(["serve", "--train_dir", str(tmp_path / "missing"), *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--workers was removed" in err and WORKERS_REMOVED in err


def test_workers_flag_is_not_in_the_help(capsys):
    with pytest.raises(SystemExit):
        cli_main(["serve", "--help"])
    assert "--workers" not in capsys.readouterr().out
