"""Keypoint conventions, the hmrkit superset, conversion by joint name and flipping.

Every keypoint array in an hmrkit store is ``(K, C)`` in the **superset** convention
(``get_convention("superset")``; :func:`superset_digest` identifies its exact joint list).
Converters map a source format into it with :func:`convert_keypoints`; loaders flip with
:func:`flip_keypoints2d`; evaluation picks joints by name with ``Convention.indices``.
See docs/keypoints.md.
"""

from hmr.core.keypoints.convention import Convention, get_convention, list_conventions
from hmr.core.keypoints.convert import (
    convert_keypoints, flip_keypoints2d, flip_keypoints3d, flip_permutation, mapping_indices,
)
from hmr.core.keypoints.superset import (
    JOINT_ALIASES, SUPERSET_JOINTS, SUPERSET_NAME, SUPERSET_VERSION, superset_digest,
)

__all__ = [
    "Convention", "get_convention", "list_conventions", "SUPERSET_NAME", "SUPERSET_VERSION",
    "SUPERSET_JOINTS", "JOINT_ALIASES", "superset_digest", "convert_keypoints",
    "mapping_indices", "flip_permutation", "flip_keypoints2d", "flip_keypoints3d",
]
