"""The core floor of hmrkit: what every other package builds on.

Errors, utilities, the schema and its stores, keypoint conventions, geometry and person
boxes, body models, the rasteriser, the crop the network sees (:mod:`hmr.core.crop`), the one
header per data source (:mod:`hmr.core.sources`) and the interchange formats (HumanData,
SPIN npz). Nothing here imports
from above: not :mod:`manifests`, :mod:`converters`, :mod:`loaders`, the application
packages of :mod:`hmr` (models, training, evaluation ...) or :mod:`cli`. The rule and the
picture are in ``docs/architecture.md``; ``tests/test_architecture.py`` enforces it.
"""

__version__ = "0.1.0"
