"""Synthetic humans: the mannequin (or any SMPL model) posed, shaped and rendered under a
perspective camera over varied backgrounds, written in a raw dataset layout of its own
(``hmr synth``), which then goes through ``hmr verify``, ``hmr convert synth`` and
``hmr shard`` like every external dataset.
"""
