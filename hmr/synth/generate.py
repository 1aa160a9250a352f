"""``hmr synth``: render posed, shaped bodies into a raw dataset of our own.

Raw layout written (what ``converters.synth`` reads, like any external dataset)::

    RAW_DIR/
      README.txt
      images/<split>/<id:06d>.jpg          RGB renders, JPEG
      annotations/<split>.json             cameras, SMPL parameters, keypoints (below)
      .hmr/manifest.toml                   every file with size and sha256:
                                           hmr verify RAW_DIR/.hmr/manifest.toml --root RAW_DIR

``annotations/<split>.json``::

    {"info": {"generator", "version", "body_model", "seed", "split", "coordinates", ...},
     "images": [{"id", "file_name", "height", "width", "K": 3x3, "background"}],
     "annotations": [{"id", "image_id", "gender", "bbox": [x, y, w, h],
                      "smpl": {"global_orient": 3, "body_pose": 69, "betas": 10, "transl": 3},
                      "joints3d_smpl24": 24x3 (m, camera frame), "joints2d_smpl24": 24x3 (px, visible),
                      "joints3d_h36m17": 17x3, "pose_rarity": float}]}

The camera frame is the schema's: x right, y down, z forward (metres); the body is rendered
with the same body model that produced the joints, so the annotations are exact.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hmr.core.body import load_body_model
from hmr.core.render import render_mesh
from hmr.core.utils.atomic import atomic_path, atomic_write_text, remove_partials_in
from hmr.synth.backgrounds import BackgroundSource
from hmr.synth.poses import PoseSampler, upright_orient
from manifests import lock_manifest

#: 2: hair on the back and crown of the head (renders show which way a body faces)
GENERATOR_VERSION = 2

# Body-part colours (RGB in [0, 1]) chosen by each vertex's dominant skinning joint.
_SKIN = (0.87, 0.72, 0.6)
_PART_OF_JOINT = {0: "pants", 1: "pants", 2: "pants", 3: "shirt", 4: "pants", 5: "pants", 6: "shirt",
                  7: "shoes", 8: "shoes", 9: "shirt", 10: "shoes", 11: "shoes", 12: "skin",
                  13: "shirt", 14: "shirt", 15: "skin", 16: "shirt", 17: "shirt", 18: "skin",
                  19: "skin", 20: "skin", 21: "skin", 22: "skin", 23: "skin"}


@dataclass
class SynthConfig:
    n: int = 100
    split: str = "train"
    image_size: int = 128
    seed: int = 0
    tail: float = 5.0  # long tail of pose rarity; 0 = uniform rarity (balanced)
    max_yaw: float = np.pi / 2
    #: folders of your own photos to crop backgrounds from (none: procedural scenes only)
    photo_dirs: tuple[str, ...] = ()
    photo_fraction: float = 0.5  # share of photo backgrounds when photo_dirs is given
    body_model: str | None = None
    jpeg_quality: int = 92
    focal_px: tuple[float, float] = (1.6, 2.6)  # focal length range, in image sizes
    body_fraction: tuple[float, float] = (0.55, 0.85)  # body height / image height
    workers: int | None = None
    batch: int = 64
    #: samples per pixel side (antialiasing): 2 = 4 samples per pixel; 1 renders 3.5x faster (benchmarks/render.py)
    supersample: int = 2


_HEAD = 15
_HAIR = (0.24, 0.16, 0.09)  # a mid brown, scaled per render from near-black to fair


def vertex_colors(lbs_weights: np.ndarray, rng: np.random.Generator,
                  hair: np.ndarray | None = None) -> np.ndarray:
    """(V, 24) skinning weights -> (V, 3) colours: skin, shirt, trousers, shoes, and hair where
    ``hair`` (V,) weights it (:func:`hair_weights`)."""
    palette = {"skin": np.array(_SKIN) * rng.uniform(0.7, 1.1), "shirt": rng.uniform(0.1, 0.95, 3),
               "pants": rng.uniform(0.05, 0.7, 3), "shoes": rng.uniform(0.0, 0.3, 3)}
    table = np.stack([palette[_PART_OF_JOINT[j]] for j in range(24)])  # (24, 3)
    colors = lbs_weights @ table
    if hair is not None:
        colors += hair[:, None] * (np.array(_HAIR) * rng.uniform(0.3, 2.2) - colors)
    return np.clip(colors, 0, 1)


def hair_weights(template: np.ndarray, lbs_weights: np.ndarray) -> np.ndarray:
    """(V,) in [0, 1]: hair on the head of the rest-pose mesh ``template`` (V, 3; SMPL's frame,
    y up, the face towards +z): the back half of the head above the nape, and the crown.

    Without it the mannequin's head is skin all round and its left and right limbs share their
    colours, so a body turned towards the camera and one turned away look nearly the same: the
    network cannot tell which way it faces (a real photo shows a face or the back of a head)."""
    head = lbs_weights[:, _HEAD]
    verts = template[head > 0.5]
    lo, extent = verts.min(axis=0), np.ptp(verts, axis=0)
    y, z = (template[:, 1] - lo[1]) / extent[1], (template[:, 2] - lo[2]) / extent[2]
    back = np.clip((0.55 - z) / 0.15, 0, 1) * np.clip((y - 0.25) / 0.1, 0, 1)
    crown = np.clip((y - 0.8) / 0.1, 0, 1)
    return head * np.maximum(back, crown)


def place_in_view(verts: np.ndarray, focal: float, size: int, fraction: float,
                  shift_px: np.ndarray) -> np.ndarray:
    """Translation (3,) that puts a body (V, 3, origin-centred camera-frame coords) in view at
    a depth where its height spans ``fraction`` of the image, offset by ``shift_px``."""
    lo, hi = verts.min(axis=0), verts.max(axis=0)
    extent = max(hi[1] - lo[1], 0.3 * (hi[0] - lo[0]), 0.2)
    depth = focal * extent / (fraction * size) + (hi[2] - lo[2]) / 2
    centre = (lo + hi) / 2
    return np.array([-centre[0] + shift_px[0] * depth / focal, -centre[1] + shift_px[1] * depth / focal,
                     depth - centre[2]])


#: renders per extra worker process: starting one (spawn, imports) costs ~2 s, about 250 renders
RENDERS_PER_WORKER = 250


def default_workers(n: int) -> int:
    """Render processes for ``n`` images: all cores, but no more than ``n / 250`` (a small set
    renders faster in this process than a pool takes to start: 200 images in ~2 s vs ~5 s)."""
    return max(1, min(os.cpu_count() or 1, n // RENDERS_PER_WORKER))


_WORKER: dict = {}


def _init_worker(faces: np.ndarray, lbs_weights: np.ndarray, hair: np.ndarray, photo_dirs: list[Path] | None,
                 photo_fraction: float) -> None:
    _WORKER.update(faces=faces, lbs_weights=lbs_weights, hair=hair,
                   backgrounds=BackgroundSource(photo_dirs, photo_fraction))


def _render_one(job: dict) -> dict:
    """Render one sample (in a worker process): image file written; returns box and notes."""
    import cv2

    rng = np.random.default_rng(job["seed"])
    size = job["size"]
    background, description = _WORKER["backgrounds"].draw(size, rng)
    colors = vertex_colors(_WORKER["lbs_weights"], rng, _WORKER["hair"])
    light = tuple(rng.normal(0, 0.4, 3) + (0.0, 0.3, 1.0))
    image, coverage, _ = render_mesh(job["verts"], _WORKER["faces"], job["K"], size, size,
                                     vertex_colors=colors, background=background, light_dir=light,
                                     supersample=job["supersample"])
    ys, xs = np.nonzero(coverage > 0.5)
    if len(xs):  # tight box around the rendered silhouette, pixel-edge aligned
        bbox = [float(xs.min()) - 0.5, float(ys.min()) - 0.5, float(xs.max() - xs.min() + 1),
                float(ys.max() - ys.min() + 1)]
    else:
        bbox = [0.0, 0.0, float(size), float(size)]
    path = Path(job["path"])
    _, buf = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, job["quality"]])
    with atomic_path(path, many=True) as tmp:  # generate() made the folder, cleared old partials
        tmp.write_bytes(buf.tobytes())
    return {"bbox": bbox, "background": description}


def _model_array(model, name: str) -> np.ndarray:
    """The float64 array ``name`` of a loaded body model (or of the smplx model it wraps)."""
    for holder in (model, getattr(model, "smpl", None)):
        value = getattr(holder, name, None)
        if value is not None:
            return np.asarray(value.detach().cpu() if hasattr(value, "detach") else value, dtype=np.float64)
    raise AttributeError(f"body model exposes no {name}")


def skinning_weights(model) -> np.ndarray:
    """(V, 24) linear-blend-skinning weights of a loaded body model."""
    return _model_array(model, "lbs_weights")


def rest_template(model) -> np.ndarray:
    """(V, 3) rest-pose vertices (``v_template``) of a loaded body model."""
    return _model_array(model, "v_template")


@dataclass
class _Batch:
    body_pose: np.ndarray  # (B, 69)
    betas: np.ndarray  # (B, 10)
    orient: np.ndarray  # (B, 3)
    rarity: np.ndarray  # (B,)


def _forward(model, batch: _Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Body at zero translation: vertices (B, V, 3), SMPL-24 and H36M-17 joints."""
    import torch

    with torch.no_grad():
        out = model(global_orient=torch.from_numpy(batch.orient), body_pose=torch.from_numpy(batch.body_pose),
                    betas=torch.from_numpy(batch.betas))
    return (out.vertices.double().numpy(), out.joints_smpl24.double().numpy(),
            out.joints_h36m17.double().numpy())


def _annotation(idx: int, image_id: int, batch: _Batch, i: int, transl: np.ndarray, j24: np.ndarray,
                j17: np.ndarray, K: np.ndarray, size: int) -> dict:
    uv = (j24 @ K.T)[:, :2] / j24[:, 2:3]  # (24, 2) px
    inside = ((uv > -0.5) & (uv < size - 0.5)).all(axis=1) & (j24[:, 2] > 0)
    return {
        "id": idx, "image_id": image_id, "gender": "neutral",
        "smpl": {"global_orient": batch.orient[i].tolist(), "body_pose": batch.body_pose[i].tolist(),
                 "betas": batch.betas[i].tolist(), "transl": transl.tolist()},
        "joints3d_smpl24": np.round(j24, 6).tolist(),
        "joints2d_smpl24": np.c_[np.round(uv, 4), inside.astype(float)].tolist(),
        "joints3d_h36m17": np.round(j17, 6).tolist(),
        "pose_rarity": float(batch.rarity[i]),
    }


def generate(out_dir: str | os.PathLike, config: SynthConfig, *, progress: bool = True) -> Path:
    """Render ``config.n`` samples of ``config.split`` into ``out_dir``; returns the
    annotation file. Deterministic for a given config (seed and split)."""
    import multiprocessing as mp

    from tqdm import tqdm

    out_dir = Path(out_dir)
    size = int(config.image_size)
    split_seed = sum(ord(c) * 31 ** k for k, c in enumerate(config.split)) % 2**31
    rng = np.random.default_rng([config.seed, split_seed])
    model = load_body_model(config.body_model, gender="neutral")
    faces = np.asarray(model.faces, dtype=np.int64)
    sampled = PoseSampler(tail=config.tail).sample(rng, config.n)
    orient = upright_orient(rng, config.n, max_yaw=config.max_yaw)
    images = []
    # Annotations (~18 kB each) go to an unnamed scratch file as they come, not into a list:
    # generation memory stays flat in n; the final file is assembled from it at the end.
    (out_dir / "annotations").mkdir(parents=True, exist_ok=True)
    annotations = tempfile.TemporaryFile("w+", encoding="utf-8", dir=out_dir / "annotations")
    image_dir = out_dir / "images" / config.split
    image_dir.mkdir(parents=True, exist_ok=True)
    remove_partials_in(image_dir)  # leftovers of a killed run, once (not per image)
    workers = default_workers(config.n) if config.workers is None else config.workers
    ctx = mp.get_context("spawn")
    weights = skinning_weights(model)
    init = (faces, weights, hair_weights(rest_template(model), weights), [Path(d) for d in config.photo_dirs],
            config.photo_fraction)
    pool = ctx.Pool(workers, initializer=_init_worker, initargs=init) if workers > 1 else None
    if pool is None:
        _init_worker(*init)
    bar = tqdm(total=config.n, desc=f"synth {config.split}", unit=" img", disable=not progress)
    try:
        for start in range(0, config.n, config.batch):
            sl = slice(start, min(start + config.batch, config.n))
            batch = _Batch(sampled["body_pose"][sl], sampled["betas"][sl], orient[sl], sampled["rarity"][sl])
            verts, j24, j17 = _forward(model, batch)
            jobs, metas = [], []
            for i in range(len(verts)):
                idx = start + i
                focal = rng.uniform(*config.focal_px) * size
                shift = rng.uniform(-0.08, 0.08, 2) * size
                transl = place_in_view(verts[i], focal, size, rng.uniform(*config.body_fraction), shift)
                K = np.array([[focal, 0, (size - 1) / 2], [0, focal, (size - 1) / 2], [0, 0, 1.0]])
                file_name = f"images/{config.split}/{idx:06d}.jpg"
                jobs.append({"seed": int(rng.integers(2**31)), "size": size, "verts": verts[i] + transl,
                             "supersample": config.supersample, "K": K, "path": str(out_dir / file_name),
                             "quality": config.jpeg_quality})
                metas.append((idx, file_name, K, transl, j24[i] + transl, j17[i] + transl))
            # chunks of 8: fewer round trips to the workers, same order
            results = pool.imap(_render_one, jobs, chunksize=8) if pool else map(_render_one, jobs)
            for (idx, file_name, K, transl, jj24, jj17), res in zip(metas, results):
                images.append({"id": idx, "file_name": file_name, "height": size, "width": size,
                               "K": np.round(K, 6).tolist(), "background": res["background"]})
                ann = _annotation(idx, idx, batch, idx - start, transl, jj24, jj17, K, size)
                ann["bbox"] = res["bbox"]
                annotations.write((", " if idx else "") + json.dumps(ann))
                bar.update(1)
    except BaseException:
        annotations.close()
        raise
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
    info = {"generator": "hmrkit synth", "version": GENERATOR_VERSION, "split": config.split,
            "body_model": "mannequin" if config.body_model is None else "user SMPL",
            "coordinates": "camera frame, metres, x right, y down, z forward; pixels: centres at integers",
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()
                       if k not in ("workers", "body_model")}}
    ann_path = out_dir / "annotations" / f"{config.split}.json"
    with annotations, atomic_path(ann_path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        # the text json.dumps({"info", "images", "annotations"}) gives, written in pieces
        fh.write(f'{{"info": {json.dumps(info)}, "images": {json.dumps(images)}, "annotations": [')
        annotations.seek(0)
        shutil.copyfileobj(annotations, fh, 1 << 20)
        fh.write("]}")
    _write_readme(out_dir)
    write_manifest(out_dir)
    return ann_path


def _write_readme(out_dir: Path) -> None:
    text = ("Synthetic humans rendered by hmrkit (hmr synth): the licence-free mannequin or a\n"
            "user-supplied SMPL model, posed with a long-tailed pose distribution, rendered over\n"
            "procedural textures and cluttered scenes (or crops of photos named with --photos).\n"
            "Layout and keys: see hmr/synth/generate.py.\n"
            "Convert with: hmr convert synth --root THIS_FOLDER --out stores/\n")
    atomic_write_text(out_dir / "README.txt", text)


MANIFEST_RELPATH = ".hmr/manifest.toml"


def write_manifest(out_dir: str | os.PathLike, *, progress: bool = False) -> Path:
    """Write ``.hmr/manifest.toml``: every split's annotation file and image folder with
    size and sha256, in the source-manifest format, so ``hmr verify`` checks a synthetic
    dataset exactly like a downloaded one (``.hmr/`` itself is ignored by verify)."""
    import tomli_w

    out_dir = Path(out_dir)
    splits = sorted(p.stem for p in (out_dir / "annotations").glob("*.json"))
    files = [{"path": "README.txt", "kind": "file", "size": "unknown", "sha256": "unknown", "required": True}]
    for split in splits:
        files.append({"path": f"annotations/{split}.json", "kind": "file", "size": "unknown",
                      "sha256": "unknown", "required": True, "splits": [split]})
        files.append({"path": f"images/{split}", "kind": "dir", "glob": "*.jpg", "size": "unknown",
                      "count": "unknown", "tree_sha256": "unknown", "required": True,
                      "splits": [split]})
    template = {
        "schema_version": 1, "name": "synth", "title": "hmrkit synthetic humans", "category": "dataset",
        "homepage": "https://hmrkit.invalid/synth",
        "licence": "generated data, no restrictions (licence-free mannequin body model)",
        "registration_required": False, "citation": "hmrkit synthetic humans (hmr synth), generated locally",
        "converter": "converters.synth",
        "splits": splits, "sources": ["generated by hmr synth on this machine"], "files": files,
    }
    target = out_dir / MANIFEST_RELPATH
    template_path = target.with_name("manifest.template.toml")
    atomic_write_text(template_path, tomli_w.dumps(template))
    try:
        return lock_manifest(template_path, out_dir, output=target, progress=progress)
    finally:
        template_path.unlink(missing_ok=True)
