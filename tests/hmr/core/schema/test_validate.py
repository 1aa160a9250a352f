import numpy as np
import pytest

from hmr.core.errors import SchemaError
from hmr.core.keypoints import get_convention
from hmr.core.schema import StoreWriter, validate_attrs, validate_columns
from tests.fixtures.schema import WRITER_ARGS, random_columns

K = get_convention("superset").num_joints


def test_valid_block_passes():
    assert validate_columns(random_columns(20), K) == 20


@pytest.mark.parametrize("field, mutate, message", [
    ("keypoints2d", lambda c: c["keypoints2d"].__setitem__((5, 3, 0), np.nan), "NaN"),
    ("smpl_body_pose", lambda c: c["smpl_body_pose"].__setitem__((5, 10), np.inf), "NaN or inf"),
    ("keypoints3d", lambda c: c["keypoints3d"].__setitem__((5, 0, 3), 1.5), r"confidence outside \[0, 1\]"),
    ("keypoints2d", lambda c: c["keypoints2d"].__setitem__((5, 0, 2), -0.1), "confidence"),
    ("bbox_xywh", lambda c: c["bbox_xywh"].__setitem__((5, 2), 0), "width/height"),
    ("image_hw", lambda c: c["image_hw"].__setitem__((5, 0), -3), "positive"),
    ("smpl_source", lambda c: c["smpl_source"].__setitem__(5, 17), "code outside"),
    ("gender", lambda c: c["gender"].__setitem__(5, 9), "code outside"),
    ("image_path", lambda c: c["image_path"].__setitem__(5, ""), "empty image path"),
])
def test_bad_values_name_field_and_sample(field, mutate, message):
    cols = random_columns(10)
    mutate(cols)
    with pytest.raises(SchemaError, match=message) as err:
        validate_columns(cols, K, offset=100, path="x.zarr")
    assert err.value.field == field
    assert err.value.index == 105
    assert f"field '{field}', sample 105" in str(err.value)
    assert str(err.value).startswith("x.zarr")


def test_has_smpl_must_agree_with_source():
    cols = random_columns(10)
    cols["has_smpl"][3] = True
    cols["smpl_source"][3] = 0
    with pytest.raises(SchemaError, match="disagree") as err:
        validate_columns(cols, K)
    assert err.value.index == 3


@pytest.mark.parametrize("field, value, message", [
    ("keypoints2d", np.zeros((10, 17, 3), np.float32), "shape"),
    ("smpl_betas", np.zeros((10, 10), np.float64), "dtype"),
    ("image_hw", np.zeros((10, 3), np.int32), "shape"),
    ("has_smpl", np.zeros(10, np.uint8), "dtype"),
])
def test_wrong_shapes_and_dtypes(field, value, message):
    cols = random_columns(10)
    cols[field] = value
    with pytest.raises(SchemaError, match=message) as err:
        validate_columns(cols, K)
    assert err.value.field == field


def test_missing_and_unknown_fields():
    cols = random_columns(4)
    del cols["smpl_betas"]
    with pytest.raises(SchemaError, match="missing fields: smpl_betas"):
        validate_columns(cols, K)
    cols = random_columns(4)
    cols["my_field"] = np.zeros(4)
    with pytest.raises(SchemaError, match="unknown fields: my_field"):
        validate_columns(cols, K)


def test_unknown_convention_and_count_mismatch(tmp_path):
    attrs = dict(schema_version=1, dataset="d", split="s", keypoint_convention="not_a_convention",
                 num_keypoints=17, converter="c", converter_version="1", image_root="")
    with pytest.raises(SchemaError, match="unknown keypoint convention"):
        validate_attrs(attrs)
    attrs["keypoint_convention"] = "coco"
    attrs["num_keypoints"] = 18
    with pytest.raises(SchemaError, match="17 joints"):
        validate_attrs(attrs)
    attrs["num_keypoints"] = 17
    attrs["schema_version"] = 2
    with pytest.raises(SchemaError, match="not supported"):
        validate_attrs(attrs)
    with pytest.raises(Exception, match="unknown|not_a"):
        StoreWriter(tmp_path / "x.zarr", **WRITER_ARGS, keypoint_convention="not_a_convention")


def test_writer_rejects_bad_block_with_global_index(tmp_path):
    cols = random_columns(30)
    cols["smpl_betas"][25, 0] = np.nan
    with pytest.raises(SchemaError) as err:
        with StoreWriter(tmp_path / "a.zarr", **WRITER_ARGS, chunk_rows=10) as w:
            w.add_columns(cols)
    assert err.value.index == 25 and err.value.field == "smpl_betas"
    assert not any(tmp_path.iterdir())
