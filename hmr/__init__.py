"""hmrkit core: schema, keypoint conventions, body models, geometry, models, training, evaluation.

Data flows one way (see docs/architecture.md)::

    raw dataset --converters--> schema store (zarr | npz) + output manifest
    schema store --loaders--> WebDataset shards --> batches
    batches --hmr--> checkpoint --hmr.evaluate--> metrics, plots

Modules under ``hmr.schema``, ``hmr.keypoints``, ``hmr.body`` and ``hmr.utils`` are the
foundation every other package imports; they never import converters, loaders or cli.
"""

__version__ = "0.1.0"
