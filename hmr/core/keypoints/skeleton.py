"""Skeleton edges for drawing, written once over superset names.

A convention's skeleton is every edge whose two ends it has; an edge may name joints whose
presence suppresses it (``unless``), so that e.g. LSP draws neck-shoulder while MPII, which
also has a thorax, draws thorax-shoulder instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from hmr.core.keypoints.superset import FACE68, SMPL24, SMPLX_HAND_ORDER, hand21


@dataclass(frozen=True)
class Edge:
    a: str
    b: str
    unless: tuple[str, ...] = ()


def _chain(names: list[str] | tuple[str, ...], closed: bool = False) -> list[Edge]:
    edges = [Edge(x, y) for x, y in zip(names[:-1], names[1:])]
    if closed:
        edges.append(Edge(names[-1], names[0]))
    return edges


def _side_edges(s: str) -> list[Edge]:
    e = [Edge(f"{s}_ankle", f"{s}_knee"), Edge(f"{s}_knee", f"{s}_hip"),
         Edge(f"{s}_wrist", f"{s}_elbow"), Edge(f"{s}_elbow", f"{s}_shoulder"),
         Edge("pelvis", f"{s}_hip"),
         Edge(f"{s}_shoulder", f"{s}_hip", ("pelvis",)),
         Edge(f"{s}_shoulder", "neck", ("thorax", f"mpi3dhp_{s}_clavicle",
                                        f"h36m_{s}_shoulder_root")),
         Edge(f"{s}_shoulder", "thorax"),
         Edge(f"{s}_eye", "nose"), Edge(f"{s}_eye", f"{s}_ear"),
         Edge(f"{s}_ear", f"{s}_shoulder", ("neck",)),
         Edge("mpi3dhp_spine_4", f"mpi3dhp_{s}_clavicle"),
         Edge(f"mpi3dhp_{s}_clavicle", f"{s}_shoulder"),
         Edge(f"{s}_wrist", f"mpi3dhp_{s}_hand"),
         Edge(f"{s}_ankle", f"mpi3dhp_{s}_foot"), Edge(f"mpi3dhp_{s}_foot", f"mpi3dhp_{s}_toe"),
         Edge(f"{s}_ankle", f"mpi3dhp_{s}_toe", (f"mpi3dhp_{s}_foot",)),
         Edge("neck", f"h36m_{s}_shoulder_root"), Edge(f"h36m_{s}_shoulder_root", f"{s}_shoulder"),
         Edge(f"{s}_ankle", f"h36m_{s}_toe_base"),
         Edge(f"h36m_{s}_toe_base", f"h36m_{s}_toe_end"),
         Edge(f"{s}_wrist", f"h36m_{s}_thumb"), Edge(f"h36m_{s}_thumb", f"h36m_{s}_thumb_end"),
         Edge(f"{s}_wrist", f"h36m_{s}_wrist_end"),
         Edge(f"h36m_{s}_wrist_end", f"h36m_{s}_wrist_end_site"),
         # feet (COCO-WholeBody) and hands
         Edge(f"{s}_ankle", f"{s}_big_toe"), Edge(f"{s}_ankle", f"{s}_small_toe"),
         Edge(f"{s}_ankle", f"{s}_heel"), Edge(f"{s}_wrist", f"{s}_hand_root")]
    if s == "left":
        e.append(Edge("left_hip", "right_hip", ("pelvis",)))
        e.append(Edge("left_shoulder", "right_shoulder", ("neck", "thorax")))
        e.append(Edge("left_eye", "right_eye"))
    hand = hand21(s)
    for f in range(5):
        e += _chain((hand[0],) + hand[1 + 4 * f: 5 + 4 * f])
    return e


def _openpose_edges() -> list[Edge]:
    op = lambda n: f"{n}_openpose"  # noqa: E731
    e = [Edge(op("neck"), op("nose")), Edge(op("neck"), op("mid_hip"))]
    for s in ("left", "right"):
        e += _chain([op("neck"), op(f"{s}_shoulder"), op(f"{s}_elbow"), op(f"{s}_wrist")])
        e += _chain([op("mid_hip"), op(f"{s}_hip"), op(f"{s}_knee"), op(f"{s}_ankle"),
                     op(f"{s}_big_toe"), op(f"{s}_small_toe")])
        e += [Edge(op(f"{s}_ankle"), op(f"{s}_heel")), Edge(op("neck"), op(f"{s}_hip"),
                                                             (op("mid_hip"),)),
              Edge(op("nose"), op(f"{s}_eye")), Edge(op(f"{s}_eye"), op(f"{s}_ear"))]
    return e


def _body_model_edges() -> list[Edge]:
    parents = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
    e = [Edge(SMPL24[p], SMPL24[i]) for i, p in enumerate(parents) if p >= 0]
    # smplx vertex joints (face/feet in the OpenPose slots) hang off the SMPL skeleton
    e.append(Edge("smpl_head", "nose_openpose", ("neck_openpose",)))
    for s in ("left", "right"):
        e += [Edge(f"smpl_{s}_ankle", f"{s}_heel_openpose", (f"{s}_ankle_openpose",)),
              Edge(f"smpl_{s}_foot", f"{s}_big_toe_openpose", (f"{s}_ankle_openpose",))]
    e += [Edge("smpl_head", "smplx_jaw"), Edge("smpl_head", "smplx_left_eyeball"),
          Edge("smpl_head", "smplx_right_eyeball")]
    for s in ("left", "right"):
        for f in SMPLX_HAND_ORDER:
            e += _chain([f"smpl_{s}_wrist"] + [f"smplx_{s}_{f}_{k}" for k in (1, 2, 3)]
                        + [f"{s}_{f}_4"])
            e.append(Edge(f"smpl_{s}_wrist", f"{s}_{f}_4",
                          (f"smplx_{s}_{f}_3", f"{s}_{f}_3")))
    return e


def _face_edges() -> list[Edge]:
    f = FACE68
    e = _chain(f[0:17]) + _chain(f[17:22]) + _chain(f[22:27]) + _chain(f[27:31])
    e += _chain(f[31:36]) + _chain(f[36:42], True) + _chain(f[42:48], True)
    e += _chain(f[48:60], True) + _chain(f[60:68], True)
    return e


def _torso_edges() -> list[Edge]:
    return [
        Edge("neck", "head_top"), Edge("thorax", "neck"),
        Edge("pelvis", "thorax", ("spine_h36m",)), Edge("pelvis", "spine_h36m"),
        Edge("spine_h36m", "thorax", ("mpi3dhp_spine_2",)),
        Edge("spine_h36m", "neck", ("thorax", "mpi3dhp_spine_2")),
        Edge("pelvis", "h36m_spine_base"),
        *_chain(["spine_h36m", "mpi3dhp_spine_2", "mpi3dhp_spine_3", "mpi3dhp_spine_4",
                 "neck"]),
        Edge("neck", "jaw_h36m"), Edge("jaw_h36m", "head_h36m"),
        Edge("neck", "nose", ("jaw_h36m", "thorax")),
    ]


SKELETON_EDGES: tuple[Edge, ...] = tuple(
    _torso_edges() + _side_edges("left") + _side_edges("right") + _openpose_edges()
    + _body_model_edges() + _face_edges())


def skeleton_for(joint_names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The edges (pairs of superset names) drawable for a convention with these joints."""
    have = set(joint_names)
    out: list[tuple[str, str]] = []
    for edge in SKELETON_EDGES:
        if edge.a in have and edge.b in have and not have.intersection(edge.unless):
            pair = (edge.a, edge.b)
            if pair not in out and pair[::-1] not in out:
                out.append(pair)
    return tuple(out)
