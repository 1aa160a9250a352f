"""Test protocols, metrics and reports: MPJPE, PA-MPJPE, PVE, 3DPCK/AUC and the balanced metrics.

:mod:`hmr.evaluation.metrics` holds the per-sample metric functions,
:mod:`hmr.evaluation.benchmarks` the five protocols, :mod:`hmr.evaluation.report` the outputs
and :mod:`hmr.evaluation.run` the ``hmr evaluate`` pipeline.
"""

from hmr.evaluation.benchmarks import BENCHMARKS, Benchmark, SampleErrors, get_benchmark, score_predictions, select_samples
from hmr.evaluation.metrics import auc, balanced_summary, mesh_rarity, mpjpe, pa_mpjpe, pck, pck_2d, pooled_mean, pve

__all__ = ["BENCHMARKS", "Benchmark", "SampleErrors", "auc", "balanced_summary", "get_benchmark", "mesh_rarity",
           "mpjpe", "pa_mpjpe", "pck", "pck_2d", "pooled_mean", "pve", "score_predictions", "select_samples"]
