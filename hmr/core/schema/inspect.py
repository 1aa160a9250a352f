"""Summaries and pictures of a schema store (``hmr inspect``).

Statistics are accumulated block by block, so a store of any size is summarised in
bounded memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hmr.core.errors import HmrError
from hmr.core.schema.fields import GENDERS, SMPL_SOURCES
from hmr.core.schema.store import SampleStore


@dataclass
class Range:
    lo: float = np.inf
    hi: float = -np.inf

    def update(self, values: np.ndarray) -> None:
        if values.size:
            self.lo = min(self.lo, float(values.min()))
            self.hi = max(self.hi, float(values.max()))

    def __str__(self) -> str:
        return "—" if self.lo > self.hi else f"{self.lo:.3g} … {self.hi:.3g}"


@dataclass
class StoreSummary:
    path: str
    attrs: dict
    num_samples: int = 0
    coverage: dict[str, int] = field(default_factory=dict)
    smpl_sources: dict[str, int] = field(default_factory=dict)
    genders: dict[str, int] = field(default_factory=dict)
    joints2d_labelled: np.ndarray | None = None  # (K,) count of samples with conf > 0
    joints3d_labelled: np.ndarray | None = None
    ranges: dict[str, Range] = field(default_factory=dict)
    validation: str = "not run"

    def format(self, joint_names: list[str] | None = None, top: int = 12) -> str:
        a = self.attrs
        lines = [f"store      {self.path}",
                 f"dataset    {a.get('dataset')} / {a.get('split')}   schema v{a.get('schema_version')}",
                 f"converter  {a.get('converter')} {a.get('converter_version')}",
                 f"keypoints  {a.get('keypoint_convention')} ({a.get('num_keypoints')} joints)",
                 f"images     {a.get('image_root')}",
                 f"samples    {self.num_samples}", "", "coverage (samples with ...)"]
        n = max(self.num_samples, 1)
        for key, count in self.coverage.items():
            lines.append(f"  {key:<14} {count:>10}  {100 * count / n:5.1f}%")
        lines.append("smpl source  " + ", ".join(f"{k}: {v}" for k, v in self.smpl_sources.items() if v))
        lines.append("gender       " + ", ".join(f"{k}: {v}" for k, v in self.genders.items() if v))
        lines += ["", "ranges"] + [f"  {k:<22} {v}" for k, v in self.ranges.items()]
        for title, counts in (("2D", self.joints2d_labelled), ("3D", self.joints3d_labelled)):
            if counts is None or not counts.any():
                continue
            order = np.argsort(-counts)[:top]
            names = [joint_names[i] if joint_names else str(i) for i in order if counts[i]]
            lines.append(f"most labelled {title} joints: " + ", ".join(
                f"{nm} ({100 * counts[i] / n:.0f}%)" for nm, i in zip(names, order)))
        lines += ["", f"validation   {self.validation}"]
        return "\n".join(lines)


def summarize(store: SampleStore, *, validate: bool = True) -> StoreSummary:
    summary = StoreSummary(path=str(store.path), attrs=dict(store.attrs), num_samples=len(store))
    cov = {k: 0 for k in ("keypoints2d", "keypoints3d", "smpl", "smpl_transl", "intrinsics",
                          "extrinsics", "subject_id", "sequence")}
    sources = np.zeros(len(SMPL_SOURCES), dtype=np.int64)
    genders = np.zeros(len(GENDERS), dtype=np.int64)
    k = store.num_keypoints
    j2d, j3d = np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.int64)
    ranges = {name: Range() for name in ("bbox width px", "bbox height px", "keypoints2d x px",
                                          "keypoints2d y px", "keypoints3d depth m", "betas")}
    errors: list[str] = []
    from hmr.core.errors import SchemaError
    from hmr.core.schema.validate import validate_columns

    for offset, cols in store.blocks():
        if validate and not errors:
            try:
                validate_columns(cols, k, offset=offset, path=store.path)
            except SchemaError as exc:
                errors.append(str(exc))
        kp2, kp3 = cols["keypoints2d"], cols["keypoints3d"]
        has2, has3 = kp2[..., 2] > 0, kp3[..., 3] > 0  # (B, K)
        cov["keypoints2d"] += int(has2.any(axis=1).sum())
        cov["keypoints3d"] += int(has3.any(axis=1).sum())
        cov["smpl"] += int(cols["has_smpl"].sum())
        cov["smpl_transl"] += int(cols["has_smpl_transl"].sum())
        cov["intrinsics"] += int(cols["has_intrinsics"].sum())
        cov["extrinsics"] += int(cols["has_extrinsics"].sum())
        cov["subject_id"] += int(sum(1 for s in cols["subject_id"] if s))
        cov["sequence"] += int(sum(1 for s in cols["sequence"] if s))
        j2d += has2.sum(axis=0)
        j3d += has3.sum(axis=0)
        sources += np.bincount(cols["smpl_source"], minlength=len(SMPL_SOURCES))[:len(SMPL_SOURCES)]
        genders += np.bincount(cols["gender"], minlength=len(GENDERS))[:len(GENDERS)]
        ranges["bbox width px"].update(cols["bbox_xywh"][:, 2])
        ranges["bbox height px"].update(cols["bbox_xywh"][:, 3])
        ranges["keypoints2d x px"].update(kp2[..., 0][has2])
        ranges["keypoints2d y px"].update(kp2[..., 1][has2])
        ranges["keypoints3d depth m"].update(kp3[..., 2][has3])
        ranges["betas"].update(cols["smpl_betas"][cols["has_smpl"]])
    summary.coverage = cov
    summary.smpl_sources = dict(zip(SMPL_SOURCES, sources.tolist()))
    summary.genders = dict(zip(GENDERS, genders.tolist()))
    summary.joints2d_labelled, summary.joints3d_labelled = j2d, j3d
    summary.ranges = ranges
    if validate:
        summary.validation = f"FAILED: {errors[0]}" if errors else f"ok ({len(store)} samples)"
    return summary


def _load_image(store: SampleStore, sample: dict, image_root: str | None) -> np.ndarray | None:
    import cv2

    root = Path(image_root or store.attrs.get("image_root", ""))
    img = cv2.imread(str(root / sample["image_path"]), cv2.IMREAD_COLOR)
    return None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def draw_samples(store: SampleStore, out_png: str | Path, *, indices: list[int] | None = None,
                 count: int = 6, image_root: str | None = None, seed: int = 0) -> Path:
    """Save a grid of samples: image (or a grey canvas if missing), box, 2D keypoints, skeleton."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hmr.core.keypoints import get_convention

    if len(store) == 0:
        raise HmrError("store is empty: nothing to draw", path=store.path)
    if indices is None:
        rng = np.random.default_rng(seed)
        indices = sorted(rng.choice(len(store), size=min(count, len(store)), replace=False).tolist())
    conv = get_convention(store.attrs["keypoint_convention"])
    name_to_idx = {n: i for i, n in enumerate(conv.joint_names)}
    edges = [(name_to_idx[a], name_to_idx[b]) for a, b in getattr(conv, "skeleton", ())
             if a in name_to_idx and b in name_to_idx]
    cols = min(3, len(indices))
    rows = (len(indices) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, idx in zip(axes.ravel(), indices):
        s = store[idx]
        img = _load_image(store, s, image_root)
        h, w = (int(v) for v in s["image_hw"])
        ax.imshow(img if img is not None else np.full((h, w, 3), 200, np.uint8))
        x, y, bw, bh = s["bbox_xywh"]
        ax.add_patch(plt.Rectangle((x, y), bw, bh, fill=False, color="yellow", lw=1.5))
        kp = s["keypoints2d"]
        vis = kp[:, 2] > 0
        for a, b in edges:
            if vis[a] and vis[b]:
                ax.plot(kp[[a, b], 0], kp[[a, b], 1], "-", color="cyan", lw=1.5)
        ax.scatter(kp[vis, 0], kp[vis, 1], s=10, c="red", zorder=3)
        ax.set_title(f"#{idx} {s['image_path'][-40:]}" + ("" if img is not None else " (no image)"),
                     fontsize=8)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
