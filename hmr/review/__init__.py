"""``hmr review``: a local web page to look at the samples of schema stores and curate them.

- :mod:`hmr.review.index`: per-store columns read once (filters and sorting never touch images),
- :mod:`hmr.review.draw`: thumbnails and the sample view (keypoints, box, projected mesh),
- :mod:`hmr.review.marks`: curation marks in ``<store>.marks.json`` beside the store,
- :mod:`hmr.review.server`: the HTTP server (standard library, 127.0.0.1) and its JSON API,
- :mod:`hmr.review.page`: the page itself (plain HTML and JavaScript, served by the app).
"""
