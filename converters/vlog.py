"""VLOG-people (HMMR's subset of the VLOG lifestyle vlogs): tfrecords in InstaVariety's format.

human_dynamics ``doc/vlog_people.md`` releases pre-processed tfrecords only (a Google Drive
tarball; the video ids are ``datasets/vlog/vlog_ids.txt``) and points to the same format page
as InstaVariety (``doc/datasets.md``): per-track 224 px crops, OpenPose-derived 2D keypoints
in HMMR's 25-joint order (convention ``instavariety``), normalised to [-1, 1] of the crop in
the train records. Reader, keys, joints, coordinates, crops written to ``ROOT/crops`` and the
public readers' bugs avoided: :mod:`converters.instavariety`.

Raw layout (ROOT is the unpacked ``vlog/`` folder)::

    ROOT/train/*.tfrecord

Only ``train`` is known to be released (hmr-benchmarks ``vlog.py`` reads ``train/`` only;
whether a test folder exists was not verified).
"""

from __future__ import annotations

from converters.instavariety import define
from hmr.core.sources import SOURCES

SOURCE = SOURCES["vlog"]
VERSION = "1"
raw_files, iter_samples = define(SOURCE)
