"""Every data source hmrkit knows, each declared once: :data:`SOURCES`.

A *source* is one thing a converter turns into schema stores: a dataset (COCO 2014,
Human3.6M), a set of model fits for a dataset's images (EFT, SPIN's static fits), a
collection of another toolkit's preprocessed files (MMHuman3D's HumanData npz), or our own
synthetic renders. Its :class:`Source` header is the one place that says what it is called,
which splits it has, which manifest describes its raw files, which converter reads it and
which keypoint convention its annotations use. Everything else reads this table:

- converter modules declare ``SOURCE = SOURCES["<name>"]`` and keep only their ``VERSION``;
  :mod:`converters` builds its registry from :attr:`Source.converter`;
- source manifests (``manifests/<manifest>.toml``) take their converter and splits from here;
- dataset mixes and benchmarks name sources by :attr:`Source.name`;
- ``tests/test_identity.py`` checks that all of them agree, for every source, including
  those whose converter is not written yet.

The naming rule
---------------
- A source name is lowercase snake case, ``[a-z0-9_]+``, and is the stem of its manifest
  file (``manifests/eft_coco.toml`` describes source ``eft_coco``) and of its converter
  module (``converters/eft_coco.py``), so one name greps to all three. (COCO 2017 keeps its
  module ``converters/coco.py``: every store and output manifest records the converter's
  module path, and the stores already written say ``converters.coco``.)
- Two sources keep a manifest under another name, because the manifest describes a published
  artefact and users' locked copies (``hmr manifest lock``) and every output manifest already
  written refer to it by that name: ``spin_fits`` reads manifest ``spin_static_fits`` (SPIN's
  ``static_fits`` tarball) and ``humandata`` reads ``mmhuman3d_npz`` (MMHuman3D's npz set).
  :attr:`Source.manifest` says so; the old names stay aliases.
- One spelling per dataset, its manifest's: ``muco3dhp`` (not muco, muco-3dhp, muco_3dhp),
  ``posetrack18``, ``oh50k3d``, ``people3d``.
- Spellings used before this rule (``eft-coco``, ``spin-fits``, ``3dpw``, ``muco-3dhp``...)
  are :attr:`Source.aliases`: ``hmr convert eft-coco`` keeps working, but what is written
  (store attributes, file and shard-set names) uses the name.
- A store file is ``<name>_<split>.zarr`` (or ``.npz``); a shard set is ``<name>-<split>``.
  The hyphen is unambiguous because names have none (splits may: SPIN's ``lsp-orig``).
- A source without a converter yet has ``converter=None``; its converter, when written, goes
  in ``converters/<name>.py``.

Splits are the split names the converter accepts. An empty tuple means any name: the
HumanData and SPIN npz importers take the npz file stem as the split.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from hmr.core.errors import HmrError

NAME_PATTERN = re.compile(r"[a-z0-9_]+")
KINDS = ("dataset", "fits", "preprocessed", "synthetic")


@dataclass(frozen=True)
class Source:
    """The identity of one source. See the module docstring for the naming rule."""

    name: str
    title: str
    kind: str                          # one of KINDS
    splits: tuple[str, ...]            # split names the converter accepts; () = any file stem
    manifest: str | None               # manifests/<manifest>.toml, None: none packaged
    converter: str | None              # module path, None: not written yet
    convention: str | None = None      # native keypoint convention (hmr.core.keypoints)
    aliases: tuple[str, ...] = ()      # older spellings, still accepted on input
    default_root: str | None = None    # raw folder under a data root; None: manifest, name
    benchmark: bool = False            # one of the 31 sources of Pang et al. (NeurIPS 2022)
    description: str = ""              # one line: what the converter reads

    def has_converter(self) -> bool:
        return self.converter is not None

    def spellings(self) -> tuple[str, ...]:
        """Every name this source answers to: the name first, then the aliases."""
        return (self.name, *self.aliases)


def _src(name: str, title: str, kind: str, splits: tuple[str, ...], *, manifest: str | None = "",
         converter: str | None = "", **kw) -> Source:
    """A row of the table; manifest and converter default to the name's own file."""
    return Source(name, title, kind, splits,
                  manifest=name if manifest == "" else manifest,
                  converter=f"converters.{name}" if converter == "" else converter, **kw)


_EFT_ROOT = "eft"
_CONVERTED = (
    _src("coco2014", "COCO 2014 person keypoints", "dataset", ("train", "val"), convention="coco",
         default_root="coco", benchmark=True,
         description="COCO 2014 person keypoints (official JSON, pycocotools)"),
    _src("coco2017", "COCO 2017 person keypoints", "dataset", ("train", "val"), convention="coco",
         converter="converters.coco", default_root="coco",
         description="COCO 2017 person keypoints (official JSON, pycocotools)"),
    _src("coco_wholebody", "COCO-WholeBody v1.0", "dataset", ("train", "val"),
         convention="coco_wholebody", aliases=("coco-wholebody",), default_root="coco",
         benchmark=True,
         description="COCO-WholeBody v1.0 (COCO-style JSON, 133 joints: body, feet, face, "
                     "hands)"),
    _src("crowdpose", "CrowdPose", "dataset", ("train", "val", "test", "trainval"),
         convention="crowdpose", benchmark=True,
         description="CrowdPose (COCO-style JSON, 14 joints, crowdIndex)"),
    _src("eft_coco", "EFT fits, COCO 2014", "fits", ("train", "val"), convention="spin_49",
         aliases=("eft-coco", "coco-eft"), default_root=_EFT_ROOT, benchmark=True,
         description="EFT SMPL fits, COCO 2014 (All train; Val = EFT-COCO-val)"),
    _src("eft_coco_part", "EFT fits, COCO 2014 Part", "fits", ("train",), convention="spin_49",
         aliases=("eft-coco-part",), default_root=_EFT_ROOT, benchmark=True,
         description="EFT SMPL fits, COCO 2014 Part (all limbs labelled)"),
    _src("eft_lspet", "EFT fits, LSPET", "fits", ("train", "test"), convention="spin_49",
         aliases=("eft-lspet",), default_root=_EFT_ROOT, benchmark=True,
         description="EFT SMPL fits, LSPET (train; test = EFT-LSPET-test)"),
    _src("eft_mpii", "EFT fits, MPII", "fits", ("train",), convention="spin_49",
         aliases=("eft-mpii",), default_root=_EFT_ROOT, benchmark=True,
         description="EFT SMPL fits, MPII"),
    _src("eft_ochuman", "EFT fits, OCHuman", "fits", ("train", "test"), convention="spin_49",
         aliases=("eft-ochuman",), default_root=_EFT_ROOT, benchmark=True,
         description="EFT SMPL fits, OCHuman (train; test = EFT-OCHuman-test)"),
    _src("eft_posetrack", "EFT fits, PoseTrack", "fits", ("train",), convention="spin_49",
         aliases=("eft-posetrack",), default_root=_EFT_ROOT, benchmark=True,
         description="EFT SMPL fits, PoseTrack"),
    _src("aic", "AI Challenger human keypoints", "dataset", ("train", "val"), convention="aic",
         aliases=("ai_challenger",), benchmark=True,
         description="AI Challenger 2017 keypoints (official JSON: 14 joints, xyxy boxes, "
                     "v 1/2/3)"),
    _src("h36m", "Human3.6M", "dataset", ("train", "test_p1", "test_p2"), convention="h36m_32",
         aliases=("human36m",), benchmark=True,
         description="Human3.6M (official D2/D3 CDF poses, masks, metadata.xml or cameras.pkl, "
                     "extracted frames)"),
    _src("lip", "Look Into Person (LIP)", "dataset", ("train", "val"), convention="lip",
         benchmark=True,
         description="LIP pose CSVs (16 MPII-order joints, nan = missing) and their images"),
    _src("instavariety", "InstaVariety", "dataset", ("train", "test"), convention="instavariety",
         aliases=("insta_variety",), benchmark=True,
         description="InstaVariety (HMMR tfrecords: per-track 224 px crops, OpenPose-derived "
                     "2D, 25 joints)"),
    _src("vlog", "VLOG-people", "dataset", ("train",), convention="instavariety", benchmark=True,
         description="VLOG-people (HMMR tfrecords, same format as InstaVariety)"),
    _src("lsp", "Leeds Sports Pose", "dataset", ("train", "test"), convention="lsp",
         default_root="lsp", benchmark=True,
         description="Leeds Sports Pose (joints.mat, 2,000 images, 14 joints)"),
    _src("lspet", "LSP-Extended (HR-LSPET)", "dataset", ("train",), convention="lsp",
         default_root="lspet", benchmark=True,
         description="LSP-Extended / HR-LSPET (joints.mat (14, 3, N), 10,000 images)"),
    _src("mpi_inf_3dhp", "MPI-INF-3DHP", "dataset", ("train", "test"), convention="mpi_inf_3dhp",
         aliases=("mpi-inf-3dhp",), benchmark=True,
         description="MPI-INF-3DHP training (annot.mat, camera.calibration) and test set "
                     "(annot_data.mat)"),
    _src("mpii", "MPII Human Pose", "dataset", ("train", "valid"), convention="mpii",
         default_root="mpii", benchmark=True,
         description="MPII Human Pose (official .mat, hourglass annot/*.h5, or MMPose JSON)"),
    _src("posetrack18", "PoseTrack 2018", "dataset", ("train", "val"), convention="posetrack",
         aliases=("posetrack",), default_root="posetrack", benchmark=True,
         description="PoseTrack18 v0.45 (one COCO-style JSON per video, labelled frames, "
                     "track ids)"),
    _src("penn_action", "Penn Action", "dataset", ("train", "test"), convention="penn_action",
         aliases=("penn-action",), benchmark=True,
         description="Penn Action labels/*.mat (13 joints per frame, xyxy boxes) and frames"),
    _src("ochuman", "OCHuman (Occluded Human)", "dataset", ("val", "test"), convention="coco",
         benchmark=True,
         description="OCHuman val/test: COCO-format JSON (default) or the original ochuman.json "
                     "(19 joints, 4 visibility levels)"),
    _src("muco3dhp", "MuCo-3DHP", "dataset", ("train",), convention="muco_3dhp",
         aliases=("muco", "muco-3dhp", "muco_3dhp"), benchmark=True,
         description="MuCo-3DHP, 3DMPPE's composited release (MuCo-3DHP.json, 21 joints, "
                     "per-image intrinsics) with I2L-MeshNet's smpl_param.json"),
    # MuPoTS-3D is a test set only (the 3DHP authors' evaluation release).
    _src("mupots3d", "MuPoTS-3D", "dataset", ("test",), convention="mupots_3d",
         aliases=("mupots", "mupots-3d"), benchmark=True,
         description="MuPoTS-3D MultiPersonTestSet/TS1..TS20 (annot.mat, occlusion.mat; "
                     "17 joints, intrinsics fitted per sequence)"),
    _src("pw3d", "3D Poses in the Wild (3DPW)", "dataset", ("train", "validation", "test"),
         convention="openpose_18", aliases=("3dpw",), benchmark=True,
         description="3DPW sequence pickles (SMPL, camera poses, 2D poses) with their image "
                     "folders"),
    _src("oh50k3d", "3DOH50K", "dataset", ("train", "test"), convention="smpl",
         aliases=("3doh50k",), benchmark=True,
         description="3DOH50K {train,test}set/annots.json (SMPL fits, SMPL 24 + LSP 14 joints, "
                     "K and extrinsics per image)"),
    _src("people3d", "3D-People", "dataset", ("train", "test"), convention="people3d",
         aliases=("3dpeople",), benchmark=True,
         description="3DPeople skeleton/<subject>/<action>/camera0N/*.txt (67 Mixamo joints, "
                     "2-D and world 3-D; camera fitted per sequence) with the rgb frames"),
    _src("prox", "PROX", "dataset", ("train", "test"), convention="openpose_135", benchmark=True,
         description="PROX recordings: OpenPose keypoints with PROXD SMPL-X fits (train, "
                     "qualitative set) or MoSh++ fits (test, quantitative set); colour frames "
                     "written un-mirrored"),
    _src("humandata", "MMHuman3D HumanData npz", "preprocessed", (), manifest="mmhuman3d_npz",
         aliases=("human_data", "mmhuman3d_npz"),
         description="MMHuman3D HumanData npz (preprocessed_datasets/*.npz), restricted "
                     "unpickling"),
    _src("spin_npz", "SPIN preprocessed npz", "preprocessed", (), convention="spin_24",
         aliases=("spin-npz",),
         description="SPIN-style preprocessed npz (imgname/center/scale/part/S/pose/shape/"
                     "openpose)"),
    # Splits are SPIN's dataset keys (converters.spin_fits.SPIN_NPZ).
    _src("spin_fits", "SPIN static fits", "fits",
         ("coco", "lsp-orig", "lspet", "mpii", "mpi-inf-3dhp", "h36m"),
         manifest="spin_static_fits", aliases=("spin-fits", "spin_static_fits"),
         default_root="spin_data",
         description="SPIN static fits (*_fits.npy, (N, 82)) attached to SPIN-order samples"),
    _src("surreal", "SURREAL", "dataset", ("train", "val", "test"), convention="smpl", benchmark=True,
         description="SURREAL clips (mp4 decoded to frames, _info.mat: SMPL, 2D/3D joints; the det -1 "
                     "camera resolved to an unmirrored camera-frame body)"),
    _src("agora", "AGORA", "dataset", ("train", "validation"), convention="smpl_45",
         benchmark=True,
         description="AGORA camera dataframes (pandas pickles, read without pandas) with the "
                     "SMPL / SMPL-X fits, camera-frame joints"),
    _src("up3d", "UP-3D", "dataset", ("trainval", "test", "train", "val"), convention="lsp",
         aliases=("up-3d",), benchmark=True,
         description="UP-3D (flat folder: images, 14 LSP joints, SMPLify fits with their crop camera "
                     "mapped to the full image)"),
    _src("mtp", "Mimic-The-Pose (MTP)", "dataset", ("train", "val"), convention="openpose_135",
         benchmark=True,
         description="MTP images, OpenPose keypoints, SMPLify-XMC SMPL and SMPL-X fits, "
                     "subject metadata, train/val split"),
    # Each synthetic dataset carries its own manifest (hmr verify ROOT/.hmr/manifest.toml).
    _src("synth", "Synthetic mannequin renders", "synthetic", ("train", "val", "test"),
         manifest=None,
         description="Synthetic mannequin renders from 'hmr synth' (exact SMPL, 2D/3D joints, "
                     "cameras)"),
)


def _planned(name: str, title: str, splits: tuple[str, ...], convention: str | None = None,
             aliases: tuple[str, ...] = ()) -> Source:
    """A benchmark source whose manifest exists and whose converter is not written yet."""
    return _src(name, title, "dataset", splits, converter=None, convention=convention,
                aliases=aliases, benchmark=True)


_PLANNED = (
)


def index_sources(rows: tuple[Source, ...]) -> dict[str, Source]:
    """Name -> source, sorted by name; a name declared twice is an error (a dict would keep
    the last row silently)."""
    index: dict[str, Source] = {}
    for row in sorted(rows, key=lambda s: s.name):
        if row.name in index:
            raise HmrError(f"source '{row.name}' is declared twice in hmr.core.sources")
        index[row.name] = row
    return index


SOURCES: dict[str, Source] = index_sources(_CONVERTED + _PLANNED)
_BY_SPELLING: dict[str, Source] = {alias: s for s in SOURCES.values() for alias in s.spellings()}


def get_source(name: str) -> Source:
    """The source called ``name`` or one of its aliases (``"eft-coco"`` -> ``eft_coco``)."""
    if name in _BY_SPELLING:
        return _BY_SPELLING[name]
    close = difflib.get_close_matches(name, list(_BY_SPELLING), n=6)
    close = list(dict.fromkeys(_BY_SPELLING[c].name for c in close))[:3]  # names, not aliases
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise HmrError(f"unknown source '{name}'{hint}; run 'hmr datasets' for the list")


def source_for_manifest(manifest: str) -> Source | None:
    """The source whose raw files manifest ``manifest`` describes, if any."""
    return next((s for s in SOURCES.values() if s.manifest == manifest), None)


def canonical_name(name: str) -> str:
    """The source name for any spelling; names not in the table come back unchanged."""
    source = _BY_SPELLING.get(name)
    return source.name if source is not None else name


def shard_set_name(source: str, split: str) -> str:
    """``<name>-<split>``, the default name of a shard set made from a store of ``source``
    (any spelling) and ``split``: what :func:`hmr.core.schema.sample_keys.set_name` makes of
    the store, names and splits being key-safe already."""
    return f"{get_source(source).name}-{split}"


def parse_shard_set_name(set_name: str) -> tuple[Source, str] | None:
    """``(source, split)`` of a ``<name>-<split>`` shard-set name, or None when it names no
    source. Older spellings with hyphens (``eft-coco-train``) are recognised: the longest
    spelling that is followed by ``-`` wins."""
    cuts = [i for i, ch in enumerate(set_name) if ch == "-"]
    for i in reversed(cuts):
        source = _BY_SPELLING.get(set_name[:i])
        if source is not None and i + 1 < len(set_name):
            return source, set_name[i + 1:]
    return None


def shard_set_spellings(set_name: str) -> list[str]:
    """Every name a shard set of ``set_name``'s source and split may carry on disk: the
    canonical ``<name>-<split>`` first, then the older spellings; unknown names unchanged."""
    parsed = parse_shard_set_name(set_name)
    if parsed is None:
        return [set_name]
    source, split = parsed
    names = [f"{spelling}-{split}" for spelling in source.spellings()]
    return names if set_name in names else [set_name, *names]
