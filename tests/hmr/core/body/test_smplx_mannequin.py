"""The SMPL-X mannequin: smplx's exact file layout, loaded by smplx itself, and anatomy when posed."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch

from hmr.core.body import SMPLX55_JOINT_NAMES, ensure_smplx_mannequin
from hmr.core.body.smplx_names import SMPLX_VERTEX_JOINTS
from tests.fixtures.body import winding_numbers

J = {name: i for i, name in enumerate(SMPLX55_JOINT_NAMES)}
VJ = dict(SMPLX_VERTEX_JOINTS)


@pytest.fixture(scope="module")
def smplx_dir(tmp_path_factory):
    # The run's own cache (shared with test_smplx_model.py), never the user's.
    return ensure_smplx_mannequin(tmp_path_factory.getbasetemp() / "hmr-cache")


def _create(folder, **kw):
    import smplx

    with contextlib.redirect_stdout(io.StringIO()):
        return smplx.create(str(folder), model_type="smplx", **kw)


@pytest.fixture(scope="module")
def full_hands(smplx_dir):
    return _create(smplx_dir, use_pca=False, num_betas=10, num_expression_coeffs=10)


def _zeros(batch=1):
    z = torch.zeros
    return dict(global_orient=z(batch, 3), body_pose=z(batch, 63), betas=z(batch, 10), expression=z(batch, 10),
                left_hand_pose=z(batch, 45), right_hand_pose=z(batch, 45), jaw_pose=z(batch, 3),
                leye_pose=z(batch, 3), reye_pose=z(batch, 3))


def _run(model, **changes):
    args = _zeros()
    args.update(changes)
    with torch.no_grad():
        out = model(**args)
    return out.vertices[0].numpy(), out.joints[0].numpy()


def test_file_layout_is_smplx(smplx_dir):
    files = sorted(p.name for p in (smplx_dir / "smplx").iterdir())
    assert files == ["SMPLX_FEMALE.npz", "SMPLX_MALE.npz", "SMPLX_NEUTRAL.npz"]
    with np.load(smplx_dir / "smplx" / "SMPLX_NEUTRAL.npz", allow_pickle=False) as npz:
        shapes = {k: npz[k].shape for k in npz.files}
        weights, comps, f = npz["weights"], npz["hands_componentsl"], npz["f"]
        kintree = npz["kintree_table"]
    assert shapes["v_template"] == (10475, 3) and shapes["f"] == (20946, 3)
    assert shapes["shapedirs"] == (10475, 3, 400) and shapes["posedirs"] == (10475, 3, 486)
    assert shapes["J_regressor"] == (55, 10475) and shapes["weights"] == (10475, 55)
    assert shapes["hands_componentsl"] == shapes["hands_componentsr"] == (45, 45)
    assert shapes["hands_meanl"] == (45,) and shapes["lmk_faces_idx"] == (51,)
    assert shapes["lmk_bary_coords"] == (51, 3) and shapes["dynamic_lmk_faces_idx"] == (79, 17)
    assert shapes["dynamic_lmk_bary_coords"] == (79, 17, 3) and kintree.shape == (2, 55)
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-9)
    assert weights.min() >= 0
    np.testing.assert_allclose(comps @ comps.T, np.eye(45), atol=1e-9)
    # A closed, consistently oriented surface: every directed edge has its reverse exactly once.
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]).astype(np.int64)
    fwd = set(map(tuple, edges.tolist()))
    assert len(fwd) == len(edges) and all((b, a) in fwd for a, b in fwd)


@pytest.mark.parametrize("use_pca,comps", [(True, 12), pytest.param(False, 6, marks=pytest.mark.slow)])
def test_smplx_create_reads_every_gender(smplx_dir, use_pca, comps):
    outs = {}
    for gender in ("neutral", "male", "female"):
        model = _create(smplx_dir, gender=gender, use_pca=use_pca, num_pca_comps=comps,
                        num_betas=10, num_expression_coeffs=10)
        assert not use_pca or model.left_hand_components.shape == (comps, 45)
        assert model.num_betas == 10 and model.num_expression_coeffs == 10
        with torch.no_grad():
            out = model()
        assert out.vertices.shape == (1, 10475, 3) and out.joints.shape == (1, 127, 3)
        outs[gender] = out.vertices[0].numpy()
    height = {g: v[:, 1].max() - v[:, 1].min() for g, v in outs.items()}
    assert height["male"] > height["neutral"] > height["female"]


def test_rest_joints_inside_the_body_and_hands_on_their_side(smplx_dir, full_hands):
    verts, joints = _run(full_hands)
    inside = winding_numbers(joints[:55], verts, full_hands.faces.astype(np.int64))
    assert np.all(inside > 0.5), [SMPLX55_JOINT_NAMES[i] for i in np.flatnonzero(inside <= 0.5)]
    for side, sign in (("left", 1), ("right", -1)):
        wrist = joints[J[f"{side}_wrist"]]
        assert sign * wrist[0] > 0.5  # the body's left is +x in the rest pose
        for finger in ("index", "middle", "pinky", "ring", "thumb"):
            xs = [sign * joints[J[f"{side}_{finger}{k}"], 0] for k in (1, 2, 3)]
            assert sign * wrist[0] < xs[0] < xs[1] < xs[2]  # fingers beyond the wrist, in order
        tip = joints[55 + list(VJ).index(f"{side[0]}index")]
        assert sign * tip[0] > sign * joints[J[f"{side}_index3"], 0]
    # The index finger is on the thumb's side (front, +z) and the pinky at the back.
    assert joints[J["left_index1"], 2] > joints[J["left_middle1"], 2] > joints[J["left_ring1"], 2] \
        > joints[J["left_pinky1"], 2]
    assert joints[J["left_eye_smplhf"], 0] > 0 > joints[J["right_eye_smplhf"], 0]
    assert joints[J["jaw"], 1] > joints[J["neck"], 1]


def test_curling_a_finger_moves_only_that_finger(full_hands):
    rest_v, rest_j = _run(full_hands)
    pose = torch.zeros(1, 45)
    pose[0, 0:9] = torch.tensor([0.0, 0.0, -0.8] * 3)  # left index1..3 about -z: flexion (palm down)
    v, j = _run(full_hands, left_hand_pose=pose)
    tip = 55 + list(VJ).index("lindex")
    assert j[tip, 1] < rest_j[tip, 1] - 0.02  # the index tip goes down, towards the palm side
    pinky_tip = 55 + list(VJ).index("lpinky")
    assert np.linalg.norm(j[pinky_tip] - rest_j[pinky_tip]) < 2e-3
    moved = np.linalg.norm(v - rest_v, axis=1) > 1e-4
    assert moved.any() and np.all(v[moved, 0] > 0.7)  # only left-hand vertices moved


def test_elbow_bend_carries_the_hand(full_hands):
    rest_v, rest_j = _run(full_hands)
    body = torch.zeros(1, 63)
    body[0, 3 * (J["left_elbow"] - 1) + 1] = -1.4  # about y: the forearm swings forward (+z)
    v, j = _run(full_hands, body_pose=body)
    w, tip = J["left_wrist"], 55 + list(VJ).index("lmiddle")
    assert j[w, 2] > rest_j[w, 2] + 0.15
    assert abs(np.linalg.norm(j[tip] - j[w]) - np.linalg.norm(rest_j[tip] - rest_j[w])) < 2e-3
    np.testing.assert_allclose(j[J["right_wrist"]], rest_j[J["right_wrist"]], atol=1e-6)


def test_hand_pca_reconstructs_the_full_hand_pose(smplx_dir, full_hands):
    pca = _create(smplx_dir, use_pca=True, num_pca_comps=45, num_betas=10, num_expression_coeffs=10)
    comps_l = pca.left_hand_components.numpy()
    comps_r = pca.right_hand_components.numpy()
    rng = np.random.default_rng(0)
    full_l, full_r = 0.3 * rng.standard_normal(45), 0.3 * rng.standard_normal(45)
    coeff_l, coeff_r = full_l @ comps_l.T, full_r @ comps_r.T
    v_full, _ = _run(full_hands, left_hand_pose=torch.tensor(full_l[None], dtype=torch.float32),
                     right_hand_pose=torch.tensor(full_r[None], dtype=torch.float32))
    v_pca, _ = _run(pca, left_hand_pose=torch.tensor(coeff_l[None], dtype=torch.float32),
                    right_hand_pose=torch.tensor(coeff_r[None], dtype=torch.float32))
    np.testing.assert_allclose(v_pca, v_full, atol=1e-5)
    # The first component curls every finger: all five left tips go down together.
    _, rest_j = _run(pca)
    first = torch.zeros(1, 45)
    first[0, 0] = 1.5
    _, j = _run(pca, left_hand_pose=first)
    tips = [55 + list(VJ).index(f"l{n}") for n in ("thumb", "index", "middle", "ring", "pinky")]
    assert np.all(j[tips, 1] < rest_j[tips, 1] - 0.005)
    # Mirrored right hand: the same coefficient curls the right fingers down too.
    _, j = _run(pca, right_hand_pose=first)
    tips_r = [55 + list(VJ).index(f"r{n}") for n in ("index", "middle", "ring", "pinky")]
    assert np.all(j[tips_r, 1] < rest_j[tips_r, 1] - 0.005)


def test_expression_and_jaw_move_only_the_face(full_hands):
    rest_v, rest_j = _run(full_hands)
    for k in range(10):
        expr = torch.zeros(1, 10)
        expr[0, k] = 2.0
        v, _ = _run(full_hands, expression=expr)
        moved = np.linalg.norm(v - rest_v, axis=1) > 1e-5
        assert moved.sum() > 10, k
        assert np.all(rest_v[moved, 1] > 0.36) and np.all(rest_v[moved, 2] > 0.03), k  # the face
    v, j = _run(full_hands, jaw_pose=torch.tensor([[0.3, 0.0, 0.0]]))  # about +x: the chin goes down
    moved = np.linalg.norm(v - rest_v, axis=1) > 1e-4
    assert np.all(rest_v[moved, 1] > 0.35) and np.all(rest_v[moved, 1] < 0.43)
    assert (v[moved, 1] < rest_v[moved, 1]).mean() > 0.9
    v, _ = _run(full_hands, leye_pose=torch.tensor([[0.0, 0.4, 0.0]]))
    moved = np.linalg.norm(v - rest_v, axis=1) > 1e-5
    assert moved.any() and np.all(rest_v[moved, 0] > 0.01)  # the left eye is at +x


def test_face_landmarks_lie_on_the_face(full_hands):
    _, j = _run(full_hands)
    lmk = j[76:127]  # 51 landmarks after 55 joints + 21 vertex joints
    assert np.all(lmk[:, 1] > 0.39) and np.all(lmk[:, 2] > 0.05)
    # iBUG order: brows (17-26) above the eyes (36-47) above the nose tip (30) above the mouth (48-67).
    brows, eyes, mouth = lmk[0:10], lmk[19:31], lmk[31:51]
    assert brows[:, 1].min() > eyes[:, 1].max() > mouth[:, 1].max()
    assert lmk[19:25, 0].mean() < 0 < lmk[25:31, 0].mean()  # iBUG 36-41: the subject's right eye
