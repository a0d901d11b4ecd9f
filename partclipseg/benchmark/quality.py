"""``partclipseg bench --quality``: what each variant's precision costs, against torch fp32 on the same inputs
(README, "Benchmarks"; the rule for a default precision: docs/deployment.md, "backend auto").

* label agreement on every bundled sample photo (real photos and the kitchen scene, each with its queries) with the
  bundled (trained) model: the share of pixels with torch fp32's label, worst photo and mean;
* logits error on the official-layout tiny checkpoint (random weights): the largest logit difference over the
  photos, relative to the largest fp32 logit;
* with a held-out dataset, the bundled model's Pred-All and Oracle-Obj mIoU (``partclipseg eval``'s protocols).
"""
from __future__ import annotations

import copy

import numpy as np

from ..backends import BackendOptions, BackendUnavailable
from ..checkpoint import load_checkpoint
from ..data import open_dataset
from ..defaults import BUNDLED_CHECKPOINT
from ..evaluate import evaluate
from ..factory import open_model
from ..gate import sample_results
from ..segmenter import Segmenter
from .backends import Variant


def _runs(segmenter: Segmenter) -> str:
    return segmenter.backend.describe().split(" (")[0]


def quality_rows(variants: list[Variant], options: BackendOptions, val_dir: str | None = None,
                 limit: int | None = None) -> tuple[list[dict], list[str]]:
    """(one row per variant, a line per variant that could not run)."""
    bundled = load_checkpoint(BUNDLED_CHECKPOINT)
    tiny, _ = open_model(None, random_weights="tiny")
    reference = dict(sample_results(Segmenter(copy.deepcopy(bundled))))
    tiny_reference = dict(sample_results(Segmenter(copy.deepcopy(tiny))))
    dataset = open_dataset(val_dir, "val") if val_dir else None
    classes = len(dataset.classes.classes) if dataset else 1
    rows, skipped = [], []
    for variant in variants:
        try:
            segmenter = variant.segmenter(bundled, options, max_queries=max(classes, 16))
            tiny_segmenter = variant.segmenter(tiny, options)
        except BackendUnavailable as err:
            skipped.append(f"skipped {variant}: {err}")
            continue
        agreement = [float(np.mean(result.labels == reference[name].labels))
                     for name, result in sample_results(segmenter)]
        error = max(float((result.logits - tiny_reference[name].logits).abs().max()
                          / tiny_reference[name].logits.abs().max())
                    for name, result in sample_results(tiny_segmenter))
        row = {"variant": str(variant), "runs": _runs(segmenter),
               "labels_agree_min_%": round(100 * min(agreement), 2),
               "labels_agree_mean_%": round(100 * float(np.mean(agreement)), 2), "tiny_runs": _runs(tiny_segmenter),
               "tiny_logits_rel_err": f"{error:.1e}"}
        if dataset is not None:
            report = evaluate(segmenter, dataset, limit=limit)
            row["pred_all_miou"] = round(report.results["pred-all"].miou, 2)
            row["oracle_miou"] = round(report.results["oracle"].miou, 2)
        rows.append(row)
    if dataset is not None and rows:
        exact = next((r for r in rows if r["variant"] == "torch/fp32"), None)
        for row in rows:
            if exact is not None:
                row["pred_all_delta"] = round(row["pred_all_miou"] - exact["pred_all_miou"], 2)
                row["oracle_delta"] = round(row["oracle_miou"] - exact["oracle_miou"], 2)
    return rows, skipped
