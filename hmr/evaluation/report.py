"""Evaluation outputs: summary numbers, Markdown tables, JSON, per-sample CSV and plots.

Files written into the output folder (each atomically):

- ``results.json``: benchmark, store, sample count, MPJPE / PA-MPJPE / PVE (mm), 3DPCK /
  PA-3DPCK / AUC / PA-AUC (%, pooled over valid joints as MMHuman3D does), the
  ``conventions`` the numbers follow (joints and root, PVE convention, balanced-metric
  reference mesh, published code), the
  balanced metrics ``{"bMPJPE": {"All": .., "Tail 10%": .., "Tail 5%": ..}, ...}`` and the
  per-bin table behind ``All``;
- ``results.md``: the same as Markdown, the conventions in the header, the balanced metrics
  in the Balanced MSE README's "All / Tail 10% / Tail 5%" layout;
- ``per_sample.csv``: one row per scored sample (store row, source key, errors, rarity);
- ``error_vs_rarity.png`` and ``error_per_bin.png`` when rarity is known.

:func:`benchmarks_table` puts several runs side by side in the benchmark paper's layout
(one column per test set, PA-MPJPE / MPJPE in mm).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from hmr.core.utils.atomic import atomic_path, atomic_write_text
from hmr.evaluation.benchmarks import BENCHMARKS, Benchmark, KeypointErrors2d, SampleErrors
from hmr.evaluation.metrics import BALANCED_BINS, balanced_summary, pooled_mean

BALANCED_NAMES = {"bMPVPE": "pve_mm", "bMPJPE": "mpjpe_mm", "bPA-MPJPE": "pa_mpjpe_mm"}
PCK_NAMES = {"3DPCK": "pck", "PA-3DPCK": "pa_pck", "AUC": "auc", "PA-AUC": "pa_auc"}


def _r(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 3)


def summarise(bench: Benchmark, errors: SampleErrors, *, num_bins: int = BALANCED_BINS,
              meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Benchmark-level numbers (mm) as a JSON-ready dict."""
    result: dict[str, Any] = {
        "benchmark": bench.name, "title": bench.title, "protocol": bench.notes,
        "num_samples": int(len(errors.index)),
        "MPJPE": _r(pooled_mean(errors.mpjpe_mm, errors.valid_joints)),
        "PA-MPJPE": _r(pooled_mean(errors.pa_mpjpe_mm, errors.valid_joints)),
        "PVE": _r(pooled_mean(errors.pve_mm)) if errors.pve_mm is not None else None,
        "pve_convention": errors.pve_convention,
    }
    for key, attr in PCK_NAMES.items():
        if getattr(errors, attr, None) is not None:
            result[key] = _r(pooled_mean(getattr(errors, attr), errors.valid_joints))
    if errors.rarity_mm is not None:
        balanced, bins = {}, None
        for name, attr in BALANCED_NAMES.items():
            values = getattr(errors, attr)
            if values is None:
                continue
            s = balanced_summary(values, errors.rarity_mm, num_bins=num_bins)
            balanced[name] = {"All": _r(s.all), **{f"Tail {p}%": _r(v) for p, v in s.tails.items()}}
            bins = bins or {"edges_mm": [_r(e) for e in s.bin_edges], "counts": s.bin_counts.tolist()}
            bins[name] = [_r(m) for m in s.bin_means]
        result["balanced"] = balanced
        result["balanced_bins"] = bins
    result.update(meta or {})
    return result


def summarise_2d(bench: Benchmark, errors: KeypointErrors2d, *, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """2D benchmark numbers: mean joint error (px) and PCK per threshold (%), pooled over valid joints."""
    result: dict[str, Any] = {"benchmark": bench.name, "title": bench.title, "protocol": bench.notes,
                              "num_samples": int(len(errors.index)),
                              "2D error (px)": _r(pooled_mean(errors.error_px, errors.valid_joints))}
    for alpha, values in errors.pck.items():
        result[f"2D-PCK@{alpha:g}"] = _r(pooled_mean(values, errors.valid_joints))
    result.update(meta or {})
    return result


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def markdown(result: dict[str, Any]) -> str:
    lines = [f"## {result['title']} ({result['num_samples']} samples)", ""]
    for name, text in (result.get("conventions") or {}).items():
        lines.append(f"- {name}: {text}")
    if result.get("conventions"):
        lines.append("")
    lines += ["| Metric | Value |", "|:--|--:|"]
    for key in ("MPJPE", "PA-MPJPE", "PVE"):
        if key in result:
            lines.append(f"| {key} (mm) | {_fmt(result.get(key))} |")
    for key in [k for k in result if k.startswith("2D")]:
        lines.append(f"| {key}{'' if '(px)' in key else ' (%)'} | {_fmt(result[key])} |")
    for key in PCK_NAMES:
        if result.get(key) is not None:
            lines.append(f"| {key} (%) | {_fmt(result.get(key))} |")
    if result.get("balanced"):
        names = list(result["balanced"])
        lines += ["", "Balanced metrics, All / Tail 10% / Tail 5% (Ren et al. 2022, Sec. 4.2.2):", "",
                  "| " + " | ".join(names) + " |", "|" + ":-:|" * len(names)]
        cells = ["/".join(_fmt(v) for v in result["balanced"][n].values()) for n in names]
        lines.append("| " + " | ".join(cells) + " |")
    if result.get("protocol"):
        lines += ["", f"Protocol: {result['protocol']}."]
    return "\n".join(lines) + "\n"


def benchmarks_table(rows: dict[str, list[dict[str, Any]]], metric: str = "PA-MPJPE") -> str:
    """``{run name: [result dicts]}`` → one Markdown row per run, one column per benchmark."""
    order = [b for b in BENCHMARKS.values()
             if any(r["benchmark"] == b.name for results in rows.values() for r in results)]
    head = "| Config | " + " | ".join(b.title for b in order) + " |"
    unit = "%" if metric in PCK_NAMES or metric.startswith("2D-PCK") else "px" if metric.startswith("2D") else "mm"
    lines = [f"{metric} ({unit})", ""]
    for b in order:  # the conventions behind each column, as the results files state them
        seen = {json.dumps(r.get("conventions", {}), sort_keys=True) for results in rows.values() for r in results
                if r["benchmark"] == b.name}
        for conv in sorted(seen):
            items = json.loads(conv)
            if items:
                lines.append(f"- {b.title}: " + "; ".join(f"{k}: {v}" for k, v in items.items()))
    if len(lines) > 2:
        lines.append("")
    lines += [head, "|:--|" + "--:|" * len(order)]
    for run, results in rows.items():
        by_name = {r["benchmark"]: r for r in results}
        lines.append(f"| {run} | " + " | ".join(_fmt(by_name.get(b.name, {}).get(metric)) for b in order) + " |")
    return "\n".join(lines) + "\n"


def table_from_files(paths: list[str | os.PathLike], metric: str = "PA-MPJPE") -> str:
    """:func:`benchmarks_table` over ``results.json`` files; a run is named after the folder
    of the checkpoint it evaluated."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for path in paths:
        try:
            result = json.loads(Path(path).read_text(encoding="utf-8"))
            run = Path(result.get("checkpoint", str(path))).parent.name or str(path)
            result["benchmark"]
        except (OSError, ValueError, KeyError) as exc:
            from hmr.core.errors import ConfigError

            raise ConfigError(f"not an evaluation results.json ({type(exc).__name__}: {exc})", path=path) from None
        rows.setdefault(run, []).append(result)
    return benchmarks_table(rows, metric)


def per_sample_csv(errors: SampleErrors | KeypointErrors2d, source_keys: np.ndarray | None = None) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    if isinstance(errors, KeypointErrors2d):
        writer.writerow(["store_row", "source_key", "error_px", *(f"pck@{a:g}" for a in errors.pck), "valid_joints"])
        for i, row in enumerate(errors.index):
            key = "" if source_keys is None else str(source_keys[i])
            writer.writerow([int(row), key, f"{errors.error_px[i]:.3f}", *(f"{v[i]:.3f}" for v in errors.pck.values()),
                             int(errors.valid_joints[i])])
        return buf.getvalue()
    cols = ["store_row", "source_key", "mpjpe_mm", "pa_mpjpe_mm", "pve_mm", "rarity_mm", "pck", "pa_pck", "auc",
            "pa_auc", "valid_joints"]
    writer.writerow(cols)
    arrays = [errors.mpjpe_mm, errors.pa_mpjpe_mm, errors.pve_mm, errors.rarity_mm, errors.pck, errors.pa_pck,
              errors.auc, errors.pa_auc]
    for i, row in enumerate(errors.index):
        key = "" if source_keys is None else str(source_keys[i])
        vals = [None if a is None else a[i] for a in arrays]
        writer.writerow([int(row), key, *("" if v is None else f"{v:.3f}" for v in vals),
                         int(errors.valid_joints[i])])
    return buf.getvalue()


def plot_rarity(result: dict[str, Any], errors: SampleErrors, out_dir: Path) -> list[Path]:
    """Scatter of per-sample error against rarity, and per-bin mean errors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, attr in BALANCED_NAMES.items():
        if getattr(errors, attr) is not None:
            ax.scatter(errors.rarity_mm, getattr(errors, attr), s=2, alpha=0.4, label=name[1:])
    ax.set_xlabel("rarity: GT mesh distance to the mean mesh (mm)")
    ax.set_ylabel("error (mm)")
    ax.set_title(f"{result['title']}: error vs pose rarity")
    ax.legend(markerscale=4)
    written.append(_save(fig, out_dir / "error_vs_rarity.png"))
    bins = result["balanced_bins"]
    edges = np.asarray(bins["edges_mm"], dtype=float)
    centres = (edges[:-1] + edges[1:]) / 2
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in BALANCED_NAMES:
        if name in bins:
            ax.plot(centres, np.array(bins[name], dtype=float), marker=".", label=name)
    ax2 = ax.twinx()
    ax2.bar(centres, bins["counts"], width=np.diff(edges), alpha=0.15, color="grey")
    ax2.set_ylabel("samples per bin")
    ax.set_xlabel("rarity bin centre (mm)")
    ax.set_ylabel("mean error in bin (mm)")
    ax.set_title(f"{result['title']}: per-bin errors ({len(centres)} bins)")
    ax.legend()
    written.append(_save(fig, out_dir / "error_per_bin.png"))
    return written


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def write_report(out_dir: str | os.PathLike, result: dict[str, Any], errors: SampleErrors | KeypointErrors2d,
                 source_keys: np.ndarray | None = None) -> list[Path]:
    """Write the files listed in the module docstring; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "results.json", out / "results.md", out / "per_sample.csv"]
    atomic_write_text(files[0], json.dumps(result, indent=2) + "\n")
    atomic_write_text(files[1], markdown(result))
    atomic_write_text(files[2], per_sample_csv(errors, source_keys))
    if getattr(errors, "rarity_mm", None) is not None and result.get("balanced_bins"):
        files += plot_rarity(result, errors, out)
    return files
