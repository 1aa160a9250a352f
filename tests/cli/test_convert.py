"""hmr convert NAME --help lists the converter's declared -o options."""

from __future__ import annotations

import pytest

from cli.main import main


def test_convert_help_lists_the_converters_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["convert", "coco2017", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--root" in out and "options of 'coco2017' (-o KEY=VALUE):" in out
    assert "-o min_keypoints=INT  (default 1)" in out
    assert "drop persons with fewer labelled keypoints" in out
    assert "one of: annotation, keypoints" in out


def test_convert_help_without_a_name_says_how_to_list_options(capsys):
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    assert "hmr convert NAME --help" in capsys.readouterr().out


def test_convert_help_for_an_unknown_name_says_so(capsys):
    with pytest.raises(SystemExit):
        main(["convert", "no_such_dataset", "--help"])
    assert "no_such_dataset" in capsys.readouterr().out


def test_unknown_option_is_a_one_line_error(tmp_path, capsys):
    code = main(["convert", "coco2017", "--root", str(tmp_path), "--out", str(tmp_path / "out"),
                 "-o", "min_keypoint=3"])
    assert code == 2
    err = capsys.readouterr().err
    assert "no option 'min_keypoint'" in err and "did you mean min_keypoints" in err
