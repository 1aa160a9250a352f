"""COCO person keypoints (2017 release; the 2014 release is :mod:`converters.coco2014`).

Raw layout (as downloaded from cocodataset.org and unzipped into ``ROOT``)::

    ROOT/annotations/person_keypoints_{train,val}2017.json
    ROOT/train2017/000000xxxxxx.jpg
    ROOT/val2017/000000xxxxxx.jpg

The official COCO JSON (``keypoints`` = 51 numbers = 17 x [x, y, v]), read by the COCO-style
reader :mod:`converters.coco_format`, where the format, the conventions and the filtering
rules (``-o key=value``) are described. COCO specifics:

- Keypoints: COCO-17 order (convention ``"coco"``). COCO's visibility ``v`` is 0 = not
  labelled, 1 = labelled but occluded, 2 = visible; both 1 and 2 become confidence 1, 0
  becomes confidence 0 (with x = y = 0 as in the file); any other code is a bad record.
- Box: the annotation's own ``bbox`` is the publisher's box around the segmentation.
- Limb joints for ``min_limb_keypoints``: COCO indices 5-16. SPIN and MMHuman3D use 12 (all
  limbs labelled): ``-o min_limb_keypoints=12`` (or ``-o preset=spin``) reproduces their
  COCO-2014 training set.
"""

from __future__ import annotations

from converters.coco_format import OPTIONS, CocoFormat, define  # noqa: F401  (OPTIONS: the reader's)
from hmr.core.sources import SOURCES

SOURCE = SOURCES["coco2017"]
VERSION = "1"
FORMAT = CocoFormat(annotations="annotations/person_keypoints_{split}2017.json",
                    images="{split}2017", convention="coco", visibility=(0, 1, 2))
raw_files, iter_samples = define(SOURCE, FORMAT)
