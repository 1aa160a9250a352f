"""CrowdPose (Li et al., CVPR 2019): crowded scenes, 14 joints, COCO-style JSON.

Raw layout (images zip and annotation folder from the Google Drive links of
github.com/Jeff-sjtu/CrowdPose; the annotation folder unpacked as ``json/``, as HigherHRNet,
DEKR and ROMP expect)::

    ROOT/json/crowdpose_{train,val,test,trainval}.json
    ROOT/images/<image id>.jpg          (e.g. 100000.jpg; file_name == f"{id}.jpg")

The same JSON files at ``ROOT/crowdpose_<split>.json`` or
``ROOT/annotations/crowdpose_<split>.json`` are read when ``json/`` has none (the layouts
MMHuman3D's docs and other repositories use). MMPose's re-exported
``mmpose_crowdpose_*.json`` are not read.

Read by the COCO-style reader :mod:`converters.coco_format` (format, options and the bad
records it reports are described there). Keys (checked on the publisher's full
``crowdpose-api/annotations/crowdpose_val.json``, 2,000 images, 8,527 annotations):
``images[{file_name, id, height, width, crowdIndex}]``, ``annotations[{num_keypoints,
iscrowd, keypoints (42 = 14 x [x, y, v]), image_id, bbox, category_id, id}]``,
``categories[{name: "person", keypoints, skeleton}]``.

CrowdPose specifics
-------------------
- Joint order (``categories[0].keypoints`` of the real file; convention ``crowdpose``):
  left/right shoulder, elbow, wrist, hip, knee, ankle (left first, as COCO), then ``head``
  (the top of the head, AI Challenger style: superset ``head_top``) and ``neck``.
- Visibility: 0 = not labelled (x = y = 0), 1 = labelled, 2 = labelled and visible. Head and
  neck are only ever 0 or 1 in the real file, so 1 cannot mean "occluded" for them; every
  labelled joint gets confidence 1 and the raw codes are kept in ``extra_visibility`` (14,)
  int8. A code outside {0, 1, 2} is a bad record.
- ``num_keypoints`` counts only the first 12 joints (true for every annotation of the val
  file): it is not read; labelled joints are counted from ``v``.
- ``categories[0].skeleton`` is COCO's (joint numbers up to 17, meaningless for 14 joints):
  not read; the drawing skeleton comes from the convention.
- No ``area`` and no ``segmentation``: neither is read. Boxes are the annotation's ``bbox``
  (x, y, width, height, floats or ints), no enlargement.
- ``crowdIndex`` (per image, 0..1, the paper's crowding measure) is kept as
  ``extra_crowdIndex``.
- Crowd regions (``iscrowd = 1``, 106 in val; ``num_keypoints`` 0, though one carries a
  labelled head) are dropped unless ``-o keep_crowd=1``; persons with no labelled joint
  (499 in val) are dropped by ``min_keypoints=1``.

MMHuman3D's ``crowdpose.py`` keeps only persons with all 14 joints labelled and inside the
image, and binarises ``v``; here ``-o min_keypoints=14`` keeps the first rule, and the raw
codes stay in ``extra_visibility``.
"""

from __future__ import annotations

from converters.coco_format import OPTIONS, CocoFormat, define  # noqa: F401  (OPTIONS: the reader's)
from hmr.core.sources import SOURCES

SOURCE = SOURCES["crowdpose"]
VERSION = "1"
FORMAT = CocoFormat(annotations="json/crowdpose_{split}.json", images="images",
                    convention="crowdpose", image_extras=("crowdIndex",), visibility=(0, 1, 2),
                    keep_visibility=True,
                    fallbacks=("crowdpose_{split}.json", "annotations/crowdpose_{split}.json"))
raw_files, iter_samples = define(SOURCE, FORMAT)
