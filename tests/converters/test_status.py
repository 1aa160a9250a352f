"""``hmr datasets``: manifest present, raw data found, verified (recorded), converted."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from converters.status import dataset_status, format_table
from tests.fixtures.converters_2d import convert, write_coco, write_lsp


@pytest.fixture
def data_root(tmp_path):
    write_coco(tmp_path / "coco", split="val")
    write_lsp(tmp_path / "lsp", n=4)
    return tmp_path


def _row(rows, name):
    return next(r for r in rows if r.name == name)


def test_every_converter_is_listed_with_its_manifest(data_root):
    from converters import get_converter, list_converters

    rows = dataset_status(data_root)
    names = {get_converter(a).SOURCE.name for a in list_converters()}
    assert {r.name for r in rows if r.has_converter} == names
    for name in ("coco2014", "coco2017", "lsp", "lspet", "mpii", "eft_coco", "eft_lspet", "eft_ochuman",
                 "spin_fits"):
        assert _row(rows, name).manifest_present, name


def test_raw_data_found_per_split(data_root):
    rows = dataset_status(data_root)
    assert _row(rows, "coco2017").raw_splits == ["val"]
    assert _row(rows, "lsp").raw_splits == ["train", "test"]
    assert not _row(rows, "mpii").raw_found and _row(rows, "mpii").verified == "-"
    assert _row(rows, "lsp").verified == "not run"


def test_converted_and_incomplete_stores(data_root):
    convert("lsp", data_root / "lsp", data_root / "stores", "test")
    (data_root / "stores" / "coco2017_val.zarr").mkdir()  # a folder that is no complete store
    rows = dataset_status(data_root)
    assert _row(rows, "lsp").converted == ["test"]
    assert _row(rows, "coco2017").incomplete == ["val"] and _row(rows, "coco2017").converted == []
    table = format_table(rows, data_root, data_root / "stores")
    assert "incomplete: val" in table


def test_verification_is_recorded_and_goes_stale(data_root, tmp_path_factory, monkeypatch):
    # The packaged LSP manifest expects 2000 images: our 4-image fixture fails it.
    rows = dataset_status(data_root, verify=True)
    assert _row(rows, "lsp").verified == "failed"
    assert json.loads((data_root / "lsp" / ".hmr" / "verify-lsp.json").read_text())["ok"] is False
    # A user manifest without the image count accepts it; editing it makes the record stale.
    user = tmp_path_factory.mktemp("manifests")
    text = resources.files("manifests").joinpath("lsp.toml").read_text()
    text = text.replace("count = 2000", 'count = "unknown"')
    (user / "lsp.toml").write_text(text)
    monkeypatch.setenv("HMR_MANIFEST_DIR", str(user))
    assert _row(dataset_status(data_root, verify=True), "lsp").verified == "ok"
    assert _row(dataset_status(data_root), "lsp").verified == "ok"  # read back, not rerun
    (user / "lsp.toml").write_text(text + "\n# edited\n")
    assert _row(dataset_status(data_root), "lsp").verified == "stale"


def test_cli_table_and_json(data_root, capsys, monkeypatch):
    from cli.main import main

    monkeypatch.setenv("HMR_DATA", str(data_root))
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert f"data root: {data_root}" in out
    assert any(line.startswith("lsp ") and "found (train,test)" in line for line in out.splitlines())
    assert main(["datasets", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert next(r for r in rows if r["name"] == "coco2017")["raw_splits"] == ["val"]
