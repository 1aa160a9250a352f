"""SMPL-X samples (PROX, AGORA ``fit=smplx``) get their SMPL-X mesh drawn in the sample view.

The store is made by the PROX converter from the fixture release (tests/fixtures/prox.py:
PCA hand poses with 12 components, hand mean not flat, fits in the camera frame). What the
page draws is checked against smplx itself, called the way the PROX fitting code calls it
(``use_pca=True, num_pca_comps=12``) on the raw fit: the drawn pixels are where its vertices
project.
"""

from __future__ import annotations

import contextlib
import io

import cv2
import numpy as np
import pytest
import torch

from tests.review.conftest import get, get_json

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prox(tmp_path_factory):
    from tests.fixtures.converters_2d import convert
    from tests.fixtures.prox import write_prox

    tmp = tmp_path_factory.mktemp("prox")
    wrote = write_prox(tmp / "raw", "train", n=2)
    result, store = convert("prox", tmp / "raw", tmp / "out", "train")
    return result.store, store, wrote


def _reference_pixels(fit: dict, k: np.ndarray, gender: str, rot: np.ndarray | None = None,
                      transl: np.ndarray | None = None) -> np.ndarray:
    """(V, 2) pixels of the fit's vertices by smplx with PCA hands, as PROX's fitting code poses it."""
    import smplx

    from hmr.core.body.smplx_model import resolve_smplx_file

    with contextlib.redirect_stdout(io.StringIO()):
        model = smplx.SMPLX(str(resolve_smplx_file(None, gender)), gender=gender, use_pca=True, num_pca_comps=12,
                            flat_hand_mean=False, num_betas=10, num_expression_coeffs=10)
    names = ("global_orient", "body_pose", "betas", "left_hand_pose", "right_hand_pose", "jaw_pose", "leye_pose",
             "reye_pose", "expression", "transl")
    with torch.no_grad():
        verts = model(**{n: torch.from_numpy(fit[n]) for n in names}).vertices[0].numpy().astype(np.float64)
    cam = verts if rot is None else verts @ rot.T + transl
    uv = cam @ k.T
    return uv[:, :2] / uv[:, 2:]


def _check(store, sample, reference_px: np.ndarray) -> None:
    """The mesh the view draws (:func:`hmr.review.draw.sample_mesh`) projects its vertices on
    the reference's pixels, and the picture changes where they fall: the drawn region spans
    their extent (the shading may match the grey image in places, so pixels are not compared
    one by one)."""
    from hmr.review.draw import sample_mesh, sample_view

    verts, faces, k = sample_mesh(sample)
    assert verts.shape == (10475, 3) and faces.max() == 10474
    uv = verts @ k.T
    assert np.abs(uv[:, :2] / uv[:, 2:] - reference_px).max() < 0.5
    with_mesh, drawn = sample_view(store, sample)
    assert drawn["mesh"], drawn
    plain, _ = sample_view(store, sample, mesh=False)
    changed = np.abs(with_mesh.astype(int) - plain.astype(int)).sum(axis=2) > 20
    assert changed.sum() > 20000
    ys, xs = np.nonzero(changed)
    lo, hi = reference_px.min(axis=0), reference_px.max(axis=0)
    assert abs(xs.min() - lo[0]) < 4 and abs(xs.max() - hi[0]) < 4, (xs.min(), xs.max(), lo, hi)
    assert abs(ys.min() - lo[1]) < 4 and abs(ys.max() - hi[1]) < 4, (ys.min(), ys.max(), lo, hi)


def test_a_prox_sample_gets_its_smplx_mesh(prox):
    from hmr.review.draw import mesh_model, mesh_status

    _, store, wrote = prox
    sample = store[0]
    assert not sample["has_smpl"] and int(sample["extra_smplx_hand_pca"]) == 12
    assert mesh_model(sample) == "smplx" and mesh_status(sample) == "drawn"
    k = np.asarray(sample["cam_intrinsics"], np.float64)
    fit = {n: np.asarray(v, np.float32) for n, v in wrote["fits"][0].items()}
    _check(store, sample, _reference_pixels(fit, k, "male"))


def test_smplx_outside_the_camera_frame_goes_through_the_extrinsics(prox):
    """PROX's MoSh++ fits are in the Vicon frame (extra_smplx_in_camera_frame 0): the vertices
    are taken to the camera by cam_extrinsics; without extrinsics there is no mesh."""
    from hmr.review.draw import mesh_status

    _, store, wrote = prox
    rot = cv2.Rodrigues(np.array([0.0, 0.15, 0.05]))[0]
    ext = np.eye(4, dtype=np.float32)
    ext[:3, :3], ext[:3, 3] = rot, (-0.2, 0.1, 0.4)
    sample = dict(store[1], extra_smplx_in_camera_frame=np.uint8(0), has_extrinsics=True, cam_extrinsics=ext)
    assert mesh_status(sample) == "drawn"
    fit = {n: np.asarray(v, np.float32) for n, v in wrote["fits"][1].items()}
    px = _reference_pixels(fit, np.asarray(sample["cam_intrinsics"], np.float64), "male",
                           rot.astype(np.float64), ext[:3, 3].astype(np.float64))
    _check(store, sample, px)
    assert mesh_status(dict(sample, has_extrinsics=False)) == "no camera: mesh not drawn"


def test_axis_angle_hands_and_the_smplx_gender_column(prox):
    """AGORA's layout: 45 axis-angle values per hand (extra_smplx_num_pca_comps 0, use_pca
    false) and the model's gender in extra_smplx_gender. The same body written that way is
    drawn on the same pixels."""
    import smplx

    from hmr.core.body.smplx_model import resolve_smplx_file

    _, store, wrote = prox
    sample = store[0]
    with contextlib.redirect_stdout(io.StringIO()):
        model = smplx.SMPLX(str(resolve_smplx_file(None, "male")), gender="male", use_pca=True, num_pca_comps=12)
    fit = wrote["fits"][0]
    hands = {side: (torch.from_numpy(np.asarray(fit[f"{side}_hand_pose"], np.float32))
                    @ getattr(model, f"{side}_hand_components")).numpy()[0]
             for side in ("left", "right")}
    agora = {k: v for k, v in sample.items() if k not in ("extra_smplx_hand_pca", "extra_smplx_flat_hand_mean")}
    agora.update({"extra_smplx_left_hand_pose": hands["left"], "extra_smplx_right_hand_pose": hands["right"],
                  "extra_smplx_num_pca_comps": np.int32(0), "extra_smplx_use_pca": False,
                  "extra_smplx_gender": np.uint8(1), "gender": np.uint8(0)})  # GENDERS[1] == "male"
    fit32 = {n: np.asarray(v, np.float32) for n, v in fit.items()}
    _check(store, agora, _reference_pixels(fit32, np.asarray(sample["cam_intrinsics"], np.float64), "male"))


def test_the_server_draws_the_smplx_mesh(prox):
    from hmr.review.index import ReviewIndex
    from hmr.review.server import serve_in_thread

    path, _, _ = prox
    server, _ = serve_in_thread(ReviewIndex([path]), 0)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        fields = get_json(f"{url}/api/sample/0/0")
        assert fields["mesh"] == "drawn" and fields["mesh_model"] == "smplx"
        status, png = get(f"{url}/view/0/0.png")
        assert status == 200
        with_mesh = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).astype(int)
        without = cv2.imdecode(np.frombuffer(get(f"{url}/view/0/0.png?mesh=0")[1], np.uint8), cv2.IMREAD_COLOR)
        changed = np.abs(with_mesh - without.astype(int)).sum(axis=2) > 20
        assert changed.sum() > 20000  # a body of tens of thousands of pixels in the 1920 x 1080 frame
    finally:
        server.shutdown()
        server.server_close()
