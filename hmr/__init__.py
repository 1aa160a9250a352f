"""hmrkit's ``hmr`` package, in two floors (see docs/architecture.md):

- :mod:`hmr.core` — the floor everything builds on: errors, utils, schema and stores,
  keypoint conventions, geometry, body models, the rasteriser, HumanData / SPIN interchange.
  It imports nothing above it.
- the application floor, the other subpackages: models, losses, synth, fitting (SMPLify),
  evaluation, training, and the demo that runs the whole pipeline. They build on the core
  and on the data packages (:mod:`manifests`, :mod:`converters`, :mod:`loaders`).

Data flows one way::

    raw dataset --converters--> schema store (zarr | npz) + output manifest
    schema store --loaders--> WebDataset shards --> batches
    batches --hmr.training--> checkpoint --hmr.evaluation--> metrics, plots
"""

from hmr.core import __version__

__all__ = ["__version__"]
