"""The review server's JSON API on a free loopback port: paging, filters, sorting, pictures,
path traversal, marks."""

from __future__ import annotations

import json
import threading
import time

import cv2
import numpy as np
import pytest

from hmr.review.draw import LEFT
from tests.review.conftest import KNOWN, KNOWN_PX, N, get, get_json, post_json


def test_first_page_and_paging(server):
    first = get_json(f"{server}/api/samples?limit=10")
    assert first["total"] == N and [it["row"] for it in first["items"]] == list(range(10))
    last = get_json(f"{server}/api/samples?limit=10&offset=20")
    assert [it["row"] for it in last["items"]] == [20, 21, 22, 23]
    item = first["items"][KNOWN]
    assert item["source_key"] == f"ann:{1000 + KNOWN}" and item["image_path"] == f"sub/img_{KNOWN:03d}.jpg"
    assert item["fit_error"] == KNOWN * 1.5 and item["joints2d"] == 3 + KNOWN % 10


def test_filters(server):
    smpl = get_json(f"{server}/api/samples?has_smpl=1&limit=500")
    assert smpl["total"] == N // 2 and all(it["row"] % 2 == 0 and it["has_smpl"] for it in smpl["items"])
    eft = get_json(f"{server}/api/samples?smpl_source=eft&limit=500")
    assert [it["row"] for it in eft["items"]] == [it["row"] for it in smpl["items"]]
    three_d = get_json(f"{server}/api/samples?has3d=1&limit=500")
    assert [it["row"] for it in three_d["items"]] == list(range(0, N, 3))
    joints = get_json(f"{server}/api/samples?min_joints2d=10&limit=500")
    assert [it["row"] for it in joints["items"]] == [i for i in range(N) if 3 + i % 10 >= 10]
    assert get_json(f"{server}/api/samples?dataset=other")["total"] == 0
    assert get_json(f"{server}/api/samples?dataset=demo&split=val")["total"] == N
    status, body = get(f"{server}/api/samples?min_fit_error=abc")
    assert status == 400 and b"not a number" in body


def test_sorting_by_fit_and_model_error(server):
    fit = get_json(f"{server}/api/samples?sort=-fit_error&limit=3")
    assert [it["row"] for it in fit["items"]] == [N - 1, N - 2, N - 3]
    worst = get_json(f"{server}/api/samples?sort=-eval_error&limit=500")
    rows = [it["row"] for it in worst["items"]]
    assert rows[:3] == [22, 20, 18]  # pa_mpjpe = 7 * row + 1 for the even rows
    assert worst["items"][0]["eval_error"] == 7 * 22 + 1
    assert all(r % 2 == 1 for r in rows[N // 2:])  # unscored samples (NaN) last
    scored = get_json(f"{server}/api/samples?min_eval_error=100&limit=500")
    assert sorted(it["row"] for it in scored["items"]) == [r for r in range(0, N, 2) if 7 * r + 1 >= 100]
    assert get(f"{server}/api/samples?sort=nonsense")[0] == 400


def wait_for_rarity(server: str, timeout: float = 120.0) -> list[dict]:
    """Polls /api/rarity until no store's job runs; returns the last report."""
    deadline = time.monotonic() + timeout
    while True:
        stores = get_json(f"{server}/api/rarity")["stores"]
        if all(p["state"] != "running" for p in stores) or time.monotonic() > deadline:
            return stores
        time.sleep(0.1)


def test_pose_rarity_sort(server):
    status, body = get(f"{server}/api/samples?sort=-rarity_mm&has_smpl=1&limit=500")
    if status == 202:  # the first request starts the background job
        pending = json.loads(body)
        assert pending["pending"] == "rarity_mm" and pending["rarity"][0]["total"] == N
        progress = wait_for_rarity(server)
        assert progress[0]["state"] == "done" and progress[0]["done"] == progress[0]["total"] == N, progress
    rare = get_json(f"{server}/api/samples?sort=-rarity_mm&has_smpl=1&limit=500")
    values = [it["rarity_mm"] for it in rare["items"]]
    assert all(v is not None for v in values) and values == sorted(values, reverse=True)
    # body pose noise grows with row % 4: the rarest are rows with row % 4 == 2
    assert rare["items"][0]["row"] % 4 == 2 and values[0] > values[-1] > 0


def test_sample_view_draws_the_keypoint_at_its_pixel(server):
    status, png = get(f"{server}/view/0/{KNOWN}.png?mesh=0")
    assert status == 200
    img = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    x, y = KNOWN_PX
    assert tuple(img[y, x]) == LEFT  # the left shoulder, in the left colour
    assert tuple(img[5, 5]) == (90, 90, 90)  # the image itself elsewhere (grey JPEG)


def test_sample_view_draws_the_mesh(server):
    status, png = get(f"{server}/view/0/2.png")  # has SMPL, translation and intrinsics
    assert status == 200
    with_mesh = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).astype(int)
    without = cv2.imdecode(np.frombuffer(get(f"{server}/view/0/2.png?mesh=0")[1], np.uint8),
                           cv2.IMREAD_COLOR).astype(int)
    changed = np.abs(with_mesh - without).sum(axis=2) > 20
    assert changed.sum() > 200  # a body of several hundred pixels around the centre
    ys, xs = np.nonzero(changed)
    assert 40 < xs.mean() < 120 and 20 < ys.mean() < 100


def test_thumbnail_and_fields(server):
    status, jpg = get(f"{server}/thumb/0/3.jpg")
    assert status == 200 and cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR).shape == (160, 160, 3)
    s = get_json(f"{server}/api/sample/0/{KNOWN}")
    assert s["provenance"]["source_key"] == f"ann:{1000 + KNOWN}" and s["provenance"]["converter"] == "test"
    assert len(s["fields"]["keypoints2d"]) == 17 and s["extra"]["extra_fit_error"] == pytest.approx(KNOWN * 1.5)
    assert get(f"{server}/api/sample/0/{N}")[0] == 404
    assert get(f"{server}/api/sample/1/0")[0] == 404


@pytest.mark.parametrize("path", ["/files/0/../demo_val.zarr/.zattrs", "/files/0/%2e%2e/demo_val.zarr/.zattrs",
                                  "/files/0/%2Fetc%2Fpasswd", "/files/0//etc/passwd", "/files/0/sub/..%2F..%2Fx",
                                  "/files/0/sub/missing.jpg", "/files/5/sub/img_000.jpg"])
def test_files_outside_the_image_root_are_404(server, path):
    assert get(server + path)[0] == 404


def test_a_file_under_the_image_root_is_served(server):
    status, data = get(f"{server}/files/0/sub/img_000.jpg")
    assert status == 200 and data[:2] == b"\xff\xd8"


def test_page_and_script_are_served_without_outside_urls(server):
    status, html = get(server + "/")
    assert status == 200 and b"/app.js" in html
    status, js = get(server + "/app.js")
    assert status == 200
    for text in (html, js):
        assert b"http://" not in text and b"https://" not in text  # nothing from a CDN


def test_marks_round_trip_and_version_conflict(server, store_path):
    from hmr.review.marks import marks_path

    v0 = get_json(f"{server}/api/marks?store=0")["version"]
    status, doc = post_json(f"{server}/api/marks", {"store": 0, "version": v0, "set": {"4": "flipped", "7": "cut box"}})
    assert status == 200 and doc["version"] == v0 + 1 and doc["marks"]["4"]["source_key"] == "ann:1004"
    # a second tab still holding v0 is refused, nothing lost
    status, err = post_json(f"{server}/api/marks", {"store": 0, "version": v0, "clear": [4]})
    assert status == 409 and "reload" in err["error"]
    marked = get_json(f"{server}/api/samples?marked=1")
    assert [(it["row"], it["mark"]) for it in marked["items"]] == [(4, "flipped"), (7, "cut box")]
    status, doc = post_json(f"{server}/api/marks", {"store": 0, "version": v0 + 1, "clear": [4, 7]})
    assert status == 200 and doc["marks"] == {}
    assert marks_path(store_path).name == "demo_val.zarr.marks.json"
    status, err = post_json(f"{server}/api/marks", {"store": 0, "set": {str(N): "x"}})
    assert status == 400


def test_mark_a_filtered_selection(server):
    """The whole filtered selection, on every page: counted first (the page's confirmation),
    then marked with one reason, then unmarked."""
    v = get_json(f"{server}/api/marks?store=0")["version"]
    want = [i for i in range(N) if i * 1.5 >= 30]
    body = {"params": {"min_fit_error": "30"}, "reason": "bad fit", "versions": {"0": v}}
    status, dry = post_json(f"{server}/api/marks/selection", {**body, "dry_run": True})
    assert status == 200 and dry["count"] == len(want) == dry["changed"] and dry["per_store"] == {"0": len(want)}
    assert get_json(f"{server}/api/marks?store=0")["version"] == v  # counting wrote nothing
    status, r = post_json(f"{server}/api/marks/selection", body)
    assert status == 200 and r["marked"] == len(want) and r["versions"] == {"0": v + 1}
    marks = get_json(f"{server}/api/marks?store=0")["marks"]
    assert sorted(map(int, marks)) == want and {m["reason"] for m in marks.values()} == {"bad fit"}
    # unmark the even ones among them: a selection that also holds unmarked samples
    unmark = {"params": {"has_smpl": "1"}, "unmark": True, "versions": {"0": v + 1}}
    status, dry = post_json(f"{server}/api/marks/selection", {**unmark, "dry_run": True})
    assert dry["count"] == N // 2 and dry["changed"] == sum(1 for i in want if i % 2 == 0)
    status, r = post_json(f"{server}/api/marks/selection", unmark)
    assert status == 200 and r["unmarked"] == dry["changed"]
    marks = get_json(f"{server}/api/marks?store=0")["marks"]
    assert sorted(map(int, marks)) == [i for i in want if i % 2 == 1]
    assert post_json(f"{server}/api/marks/selection", {"params": {}, "reason": ""})[0] == 400
    post_json(f"{server}/api/marks", {"store": 0, "clear": list(map(int, marks))})


def test_marks_whose_sample_is_gone_are_listed_and_can_be_forgotten(tmp_path):
    from hmr.review.index import ReviewIndex
    from hmr.review.marks import marks_path
    from hmr.review.server import serve_in_thread
    from tests.review.conftest import make_store

    path = make_store(tmp_path, n=6, name="gone")
    marks_path(path).write_text(json.dumps({
        "format": "hmrkit-review-marks", "schema": 2, "version": 2, "dataset": "gone", "split": "val",
        "marks": {"ann:1002": {"row": 4, "source_key": "ann:1002", "reason": "flipped", "excluded": True},
                  "ann:9999": {"row": 5, "source_key": "ann:9999", "reason": "cut", "excluded": True}}}))
    srv, _ = serve_in_thread(ReviewIndex([path]), 0)
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        m = get_json(f"{url}/api/marks?store=0")
        assert list(m["marks"]) == ["2"] and m["marks"]["2"]["reason"] == "flipped"  # found by its key
        assert [(x["identity"], x["row"]) for x in m["missing"]] == [("ann:9999", 5)]
        assert [it["row"] for it in get_json(f"{url}/api/samples?marked=1")["items"]] == [2]
        status, doc = post_json(f"{url}/api/marks", {"store": 0, "version": 2, "forget": ["ann:9999"]})
        assert status == 200 and doc["missing"] == [] and list(doc["marks"]) == ["2"] and doc["version"] == 3
    finally:
        srv.shutdown()
        srv.server_close()


def test_concurrent_writers_lose_nothing(tmp_path):
    """Eight threads and two processes' worth of writes, no version check: every mark lands."""
    from hmr.core.schema import open_store
    from hmr.review.marks import resolve_marks, update_marks
    from tests.review.conftest import make_store

    path = make_store(tmp_path, n=40, name="conc")
    store = open_store(path)

    def writer(k: int) -> None:
        for row in range(k, 40, 8):
            update_marks(path, set_marks={row: f"w{k}"}, store=store)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    data = resolve_marks(path, store)
    assert sorted(data.rows) == list(range(40)) and data.version == 40
    assert data.rows[9]["reason"] == "w1" and data.rows[9]["source_key"] == "ann:1009"


def test_marks_of_another_dataset_or_unreadable_are_refused(tmp_path):
    from hmr.core.errors import HmrError
    from hmr.core.schema import open_store
    from hmr.review.marks import marks_path, update_marks
    from loaders.shard import marked_excluded
    from tests.review.conftest import make_store

    path = make_store(tmp_path, n=6, name="small")
    update_marks(path, set_marks={1: "x"}, store=open_store(path))
    text = marks_path(path).read_text()
    marks_path(path).write_text(text.replace('"dataset": "small"', '"dataset": "other"'))
    with pytest.raises(HmrError, match="made for dataset 'other'"):
        marked_excluded(path, open_store(path))
    marks_path(path).write_text(text.replace('"schema": 2', '"schema": 9'))
    with pytest.raises(HmrError, match="marks schema 9"):
        marked_excluded(path)
    marks_path(path).write_text("{not json")
    with pytest.raises(HmrError, match="not JSON"):
        marked_excluded(path)


def test_binding_elsewhere_is_refused(store_path):
    from hmr.core.errors import HmrError
    from hmr.review.index import ReviewIndex
    from hmr.review.server import make_server

    with pytest.raises(HmrError, match="loopback"):
        make_server(ReviewIndex([store_path]), 0, host="0.0.0.0")


@pytest.mark.parametrize("name, side", [("left_wrist", "L"), ("smpl_left_hip", "L"), ("left_big_toe_openpose", "L"),
                                        ("right_ankle", "R"), ("smpl_right_collar", "R"), ("nose", "C"),
                                        ("spine_h36m", "C"), ("leftover", "C")])
def test_side_colours(name, side):
    from hmr.review.draw import CENTRE, RIGHT, side_colour

    assert side_colour(name) == {"L": LEFT, "R": RIGHT, "C": CENTRE}[side]


def test_eval_results_of_another_store_are_refused(store_path, tmp_path):
    import json

    from hmr.core.errors import HmrError
    from hmr.review.index import ReviewIndex

    (tmp_path / "results.json").write_text(json.dumps({"store": "/elsewhere/other_val.zarr"}))
    (tmp_path / "per_sample.csv").write_text("store_row,source_key,pa_mpjpe_mm\n0,a,1.0\n")
    with pytest.raises(HmrError, match="not among the reviewed stores"):
        ReviewIndex([store_path], [tmp_path])
    # the same store named by a path relative to another folder: matched by its name
    (tmp_path / "results.json").write_text(json.dumps({"store": f"stores/{store_path.name}"}))
    index = ReviewIndex([store_path], [tmp_path])
    assert index.entries[0].eval_errors == {0: 1.0} and index.entries[0].eval_metric == "pa_mpjpe_mm"


def test_superset_store_gets_its_source_skeleton(tmp_path):
    """A COCO store kept in the superset draws COCO's own edges (torso lines) by joint name."""
    from hmr.core.keypoints import get_convention
    from hmr.core.schema import StoreWriter, open_store
    from hmr.review.draw import skeleton_edges

    sup = get_convention("superset")
    with StoreWriter(tmp_path / "coco2017_val.zarr", dataset="coco2017", split="val", converter="test",
                     converter_version="1", keypoint_convention="superset") as w:
        w.add({"image_path": "a.jpg", "image_hw": np.array([10, 10], np.int32), "source_key": "1",
               "bbox_xywh": np.array([1, 1, 5, 5], np.float32)})
    edges = {(sup.joint_names[a], sup.joint_names[b]) for a, b in skeleton_edges(open_store(tmp_path / "coco2017_val.zarr"))}
    for a, b in get_convention("coco").skeleton:
        assert (a, b) in edges or (b, a) in edges


def test_weak_perspective_camera_matches_eft_projection():
    """EFT keeps a weak-perspective crop camera: the review's perspective stand-in projects the
    body's joints where the EFT converter's own projection puts them (within half a pixel)."""
    import torch

    from converters.eft import weak_perspective_to_pixels
    from hmr.core.body.smpl import load_body_model
    from hmr.core.geometry import project_points
    from hmr.review.draw import sample_camera

    rng = np.random.default_rng(3)
    body = load_body_model()
    with torch.no_grad():
        joints = body(global_orient=torch.tensor([[np.pi, 0.0, 0.0]], dtype=torch.float32),
                      body_pose=torch.from_numpy(rng.normal(0, 0.2, (1, 69)).astype(np.float32)),
                      betas=torch.zeros(1, 10)).joints_smpl24[0].numpy().astype(np.float64)
    for cam, box in (((0.9, 0.05, -0.1), (100, 40, 300, 300)), ((1.3, -0.2, 0.15), (10, 20, 180, 240))):
        sample = {"has_smpl_transl": False, "has_intrinsics": False, "extra_weak_cam": np.array(cam),
                  "bbox_xywh": np.array(box, np.float32)}
        k, t = sample_camera(sample)
        ours = project_points(joints + t, k)
        eft = weak_perspective_to_pixels(joints, np.array(cam), np.array(box, np.float64))
        assert np.abs(ours - eft).max() < 0.5, np.abs(ours - eft).max()
    assert sample_camera({"has_smpl_transl": False, "has_intrinsics": False, "bbox_xywh": np.ones(4)}) is None


def test_a_weak_perspective_fit_gets_its_mesh_drawn(store_path):
    from hmr.core.schema import open_store
    from hmr.review.draw import sample_view

    store = open_store(store_path)
    sample = {**store[2], "has_smpl_transl": False, "has_intrinsics": False,
              "extra_weak_cam": np.array([0.9, 0.0, 0.1], np.float32)}
    img, drawn = sample_view(store, sample)
    plain, _ = sample_view(store, sample, mesh=False)
    assert drawn["mesh"] and drawn["image"]
    changed = np.abs(img.astype(int) - plain.astype(int)).sum(axis=2) > 20
    ys, xs = np.nonzero(changed)  # inside the box (30, 10, 80, 100) the fit was made for
    assert changed.sum() > 200 and 30 <= xs.min() and xs.max() <= 110 and 10 <= ys.min() and ys.max() <= 110
    del sample["extra_weak_cam"]
    assert not sample_view(store, sample)[1]["mesh"]


def test_rarity_is_computed_once_and_cached_beside_the_store(tmp_path, monkeypatch):
    """The job's result is written to <store>.review-rarity.npz; a new index (a later
    'hmr review') reads it without posing anything; another conversion of the store, or
    another body model, is not served the old values."""
    from hmr.review import index as ix
    from hmr.review.index import RarityPending, ReviewIndex, rarity_cache_path
    from tests.review.conftest import make_store

    path = make_store(tmp_path, n=8, name="rc")
    entry = ReviewIndex([path]).entries[0]
    with pytest.raises(RarityPending) as pending:
        entry.column("rarity_mm")
    assert pending.value.progress[0]["total"] == 8
    entry.rarity_job.thread.join(120)
    assert entry.rarity_progress(0)["state"] == "done", entry.rarity_progress(0)
    first = entry.column("rarity_mm")
    assert np.isnan(first[1::2]).all() and (first[0::2] >= 0).all() and np.isfinite(first[0::2]).all()
    assert rarity_cache_path(path).name == "rc_val.zarr.review-rarity.npz" and rarity_cache_path(path).is_file()
    assert not list(tmp_path.glob("*.partial-*"))

    def no_posing(*a, **k):
        raise AssertionError("posed again although the cache matches")

    monkeypatch.setattr(ix, "pose_rarity", no_posing)
    again = ReviewIndex([path]).entries[0]
    np.testing.assert_array_equal(again.column("rarity_mm"), first)  # no RarityPending: from the file
    assert again.rarity_progress(0)["state"] == "done"

    other = ReviewIndex([path], body_model=str(tmp_path / "other-smpl")).entries[0]
    with pytest.raises(RarityPending):  # another body model: the cache does not apply
        other.column("rarity_mm")
    other.rarity_job.thread.join(120)
    assert other.rarity_progress(0)["state"] == "failed" and "posed again" in other.rarity_progress(0)["error"]
    with pytest.raises(ix.HmrError, match="pose rarity failed"):
        other.column("rarity_mm")


def _recomputed(path) -> np.ndarray:
    """The rarity of a store when its cache does not apply: pending, then computed."""
    from hmr.review.index import RarityPending, ReviewIndex

    entry = ReviewIndex([path]).entries[0]
    with pytest.raises(RarityPending):
        entry.column("rarity_mm")
    entry.rarity_job.thread.join(120)
    assert entry.rarity_progress(0)["state"] == "done", entry.rarity_progress(0)
    return entry.column("rarity_mm")


def test_rarity_cache_follows_the_store_content(tmp_path):
    """The cache is keyed by the SHA-256 of the SMPL column files: a conversion that writes the
    same values reuses it, one whose poses differ (another order) does not; an unreadable cache
    is recomputed."""
    from hmr.review.index import ReviewIndex, rarity_cache_path, write_rarity_cache
    from tests.review.conftest import make_store

    a = make_store(tmp_path / "a", n=6, name="conv")
    write_rarity_cache(a, ReviewIndex([a]).entries[0].store, None, np.arange(6.0))
    assert ReviewIndex([a]).entries[0].column("rarity_mm").tolist() == list(range(6))
    time.sleep(1.1)  # 'created' is kept to the second: it differs, the content does not
    same = make_store(tmp_path / "same", n=6, name="conv")
    assert ReviewIndex([same]).entries[0].store.attrs["created"] != ReviewIndex([a]).entries[0].store.attrs["created"]
    rarity_cache_path(same).write_bytes(rarity_cache_path(a).read_bytes())
    assert ReviewIndex([same]).entries[0].column("rarity_mm").tolist() == list(range(6))
    other = make_store(tmp_path / "other", n=6, name="conv", order=[5, 4, 3, 2, 1, 0])
    rarity_cache_path(other).write_bytes(rarity_cache_path(a).read_bytes())
    values = _recomputed(other)
    assert values.tolist() != list(range(6)) and np.isfinite(values[1::2]).all()  # samples 4, 2, 0 have SMPL
    rarity_cache_path(other).write_bytes(b"not an npz")  # unreadable: recomputed, not an error
    np.testing.assert_array_equal(_recomputed(other), values)


def test_rarity_cache_key_takes_the_output_manifest_digests(tmp_path):
    """With the converter's output manifest beside the store, the digests of the files it
    lists are its own (no hashing); a file changed after the manifest is hashed again."""
    import os

    from hmr.core.schema import open_store
    from hmr.review.index import RARITY_FIELDS, column_digests
    from manifests.output import output_manifest_path, write_output_manifest
    from tests.review.conftest import make_store

    path = make_store(tmp_path, n=6, name="man")
    hashed = column_digests(open_store(path), RARITY_FIELDS)
    assert set(hashed) >= {"smpl_body_pose/.zarray", "smpl_betas/.zarray"} and len(hashed) > len(RARITY_FIELDS)
    write_output_manifest(path, converter="test", converter_version="1", schema_version=1, source_manifest=None,
                          raw_files=[], raw_root=tmp_path, counts={"val": 6}, progress=False)
    assert column_digests(open_store(path), RARITY_FIELDS) == hashed
    doc = json.loads(output_manifest_path(path).read_text())
    pose = next(f for f in doc["files"] if f["path"].startswith("smpl_body_pose/0"))
    pose["sha256"] = "0" * 64  # what the manifest says is what the key takes
    output_manifest_path(path).write_text(json.dumps(doc))
    assert column_digests(open_store(path), RARITY_FIELDS)[pose["path"]] == "0" * 64
    later = output_manifest_path(path).stat().st_mtime_ns + 10**9
    os.utime(path / pose["path"], ns=(later, later))  # rewritten after the manifest: hashed
    assert column_digests(open_store(path), RARITY_FIELDS) == hashed


def test_the_page_says_why_a_mesh_is_not_drawn(server, store_path):
    """A sample with SMPL but no camera (no translation + intrinsics, no weak-perspective
    camera) gets "no camera: mesh not drawn" in its fields, and its view has no mesh."""
    from hmr.core.schema import open_store
    from hmr.review.draw import mesh_status, sample_view

    assert get_json(f"{server}/api/sample/0/2")["mesh"] == "drawn"
    assert get_json(f"{server}/api/sample/0/{KNOWN}")["mesh"] == "no SMPL"  # odd rows have no SMPL
    store = open_store(store_path)
    no_camera = dict(store[2], has_intrinsics=False)
    assert mesh_status(no_camera) == "no camera: mesh not drawn"
    assert sample_view(store, no_camera)[1]["mesh"] is False
    assert sample_view(store, store[2])[1]["mesh"] is True
    behind = dict(store[2], smpl_transl=np.array([0, 0, -4.0], np.float32))
    assert mesh_status(behind) == "behind the camera: mesh not drawn"
    assert mesh_status(dict(store[2], has_intrinsics=False, extra_weak_cam=np.array([0.9, 0.0, 0.1]))) == "drawn"
    smplx_zero = dict(store[1], extra_smplx_global_orient=np.zeros(3, np.float32),
                      extra_smplx_body_pose=np.zeros(63, np.float32))
    assert mesh_status(smplx_zero) == "no SMPL"  # SMPL-X columns holding nothing: no fit
    smplx_only = dict(smplx_zero, extra_smplx_transl=np.array([0, 0, 3.0], np.float32))
    assert mesh_status(smplx_only) == "drawn"  # tests/review/test_smplx.py draws it
    assert mesh_status(dict(smplx_only, has_intrinsics=False)) == "no camera: mesh not drawn"
    assert mesh_status(dict(smplx_only, extra_smplx_transl=np.array([0, 0, -3.0], np.float32))) == \
        "behind the camera: mesh not drawn"
