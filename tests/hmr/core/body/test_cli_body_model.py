"""``hmr body-model``: mannequin, render, info."""

from __future__ import annotations

import numpy as np
import pytest

from cli.main import main


def test_help_shows_an_example(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["body-model", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and "hmr body-model mannequin --out" in out


def test_mannequin_writes_a_folder_smplx_can_load(tmp_path, capsys):
    import smplx

    out = tmp_path / "bm"
    assert main(["body-model", "mannequin", "--out", str(out)]) == 0
    assert "wrote mannequin" in capsys.readouterr().out
    model = smplx.create(str(out), model_type="smpl", gender="male")
    assert model().vertices.shape == (1, 6890, 3)
    # A second run refuses to clobber the folder, with a one-line error.
    assert main(["body-model", "mannequin", "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["body-model", "mannequin", "--out", str(out), "--overwrite"]) == 0


def test_render_draws_a_person(mannequin_dir, tmp_path):
    import matplotlib.image

    png = tmp_path / "body.png"
    assert main(["body-model", "render", "--body-model", str(mannequin_dir), "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = matplotlib.image.imread(png)[..., :3]  # (H, W, 3) in [0, 1]
    skin = (img[..., 0] > img[..., 2] + 0.08)  # shaded skin tone, not the white background
    assert skin.mean() > 0.03
    # Four panels (rest front/side, bent front/side) each hold part of the body.
    quarters = np.array_split(np.arange(img.shape[1]), 4)
    assert all(skin[:, q].mean() > 0.01 for q in quarters)


def test_info_reports_the_model(mannequin_dir, capsys):
    assert main(["body-model", "info", "--body-model", str(mannequin_dir), "--gender", "female"]) == 0
    out = capsys.readouterr().out
    assert "vertices: 6890" in out and "J_regressor_h36m: True" in out
    height = float(next(line for line in out.splitlines() if line.startswith("rest_height_m")).split(":")[1])
    assert 1.55 < height < 1.8


def test_missing_body_model_is_one_line_error(tmp_path, capsys):
    assert main(["body-model", "info", "--body-model", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "SMPL_NEUTRAL.pkl" in err
