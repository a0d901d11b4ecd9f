"""``partclipseg eval``: Pred-All and Oracle-Obj mIoU (seen, unseen, h-IoU) as the official evaluator counts them
(docs/model.md, "Evaluation protocols"), and part reports: how often a mask the node would publish lies on its part
(docs/training.md, "Evaluation")."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .data import PartDataset
from .data.dataset import UNLABELLED
from .defaults import MODES, REPORT_MIN_OVERLAP, REPORT_MIN_PIXELS
from .segmenter import Segmenter

PROTOCOL_NAMES = {"pred-all": "Pred-All", "oracle": "Oracle-Obj"}


class Confusion:
    """Counts (prediction, ground truth) over labelled part pixels; prediction ``n`` = background."""

    def __init__(self, n_classes: int) -> None:
        self.n = n_classes
        self.matrix = np.zeros((n_classes + 1, n_classes + 1), dtype=np.int64)

    def add(self, prediction: np.ndarray, truth: np.ndarray) -> None:
        """``prediction`` in 0..n (n = background), ``truth`` in 0..n-1 or -1 (not scored)."""
        scored = truth >= 0
        size = (self.n + 1) ** 2
        counts = np.bincount((self.n + 1) * prediction[scored].astype(np.int64) + truth[scored], minlength=size)
        self.matrix += counts.reshape(self.n + 1, self.n + 1)


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


class PartReports:
    """Counts per class over images: parts reported, reports right, parts present, present parts found."""

    def __init__(self, n_classes: int, min_pixels: int = REPORT_MIN_PIXELS,
                 min_overlap: float = REPORT_MIN_OVERLAP) -> None:
        self.n, self.min_pixels, self.min_overlap = n_classes, min_pixels, min_overlap
        self.images = 0
        self.reported, self.right, self.present, self.found = (np.zeros(n_classes, dtype=np.int64) for _ in range(4))

    def add(self, prediction: np.ndarray, truth: np.ndarray) -> None:
        """One image: ``prediction`` in 0..n (n = background), ``truth`` in 0..n-1 or -1 (no part label)."""
        predicted = np.bincount(prediction.ravel(), minlength=self.n + 1)[:self.n]
        labelled = truth >= 0
        on_part = labelled & (prediction == truth)
        truth_pixels = np.bincount(truth[labelled], minlength=self.n)
        overlap = np.bincount(truth[on_part], minlength=self.n)
        reported = predicted >= self.min_pixels
        right = reported & (overlap >= self.min_overlap * predicted)
        present = truth_pixels >= self.min_pixels
        self.images += 1
        self.reported += reported
        self.right += right
        self.present += present
        self.found += right & present

    def _share(self, part: np.ndarray, whole: np.ndarray, i: int | None) -> float | None:
        picked = slice(None) if i is None else slice(i, i + 1)
        total = int(whole[picked].sum())
        return float(part[picked].sum() / total * 100) if total else None

    def precision(self, i: int | None = None) -> float | None:
        """Right reports / reports (percent) of class ``i``, or over all classes."""
        return self._share(self.right, self.reported, i)

    def recall(self, i: int | None = None) -> float | None:
        """Present parts found / present parts (percent) of class ``i``, or over all classes."""
        return self._share(self.found, self.present, i)

    @property
    def wrong_per_image(self) -> float:
        return float((self.reported - self.right).sum() / max(self.images, 1))

    def to_json(self, classes: Sequence[str]) -> dict[str, Any]:
        return {
            "min_pixels": self.min_pixels, "min_overlap": self.min_overlap, "precision": _round(self.precision()),
            "recall": _round(self.recall()), "wrong_per_image": round(self.wrong_per_image, 3),
            "classes": {c: {"reported": int(self.reported[i]), "right": int(self.right[i]),
                            "present": int(self.present[i]), "found": int(self.found[i])}
                        for i, c in enumerate(classes)},
        }


@dataclass
class ProtocolScores:
    protocol: str
    miou: float | None
    miou_seen: float | None
    miou_unseen: float | None
    h_iou: float | None
    iou: list[float | None]  # per class (None: no ground truth)
    confusion: np.ndarray = field(repr=False)


def _mean(iou: np.ndarray, has_truth: np.ndarray, counted: np.ndarray) -> float | None:
    denominator = int(counted.sum())
    return float(iou[has_truth].sum() / denominator * 100) if denominator else None


def scores(confusion: Confusion, seen: Sequence[bool], protocol: str) -> ProtocolScores:
    """mIoU, mIoU-seen/unseen, h-IoU and per-class IoU of a confusion matrix (docs/model.md, "Evaluation
    protocols")."""
    m, n = confusion.matrix, confusion.n
    tp = np.diag(m)[:n].astype(np.float64)
    truth = m[:, :n].sum(axis=0).astype(np.float64)  # includes parts predicted as background
    predicted = m[:n, :n].sum(axis=1).astype(np.float64)
    has_truth = truth > 0
    counted = (truth + predicted) > 0
    iou = np.zeros(n)
    iou[has_truth] = tp[has_truth] / (truth + predicted - tp)[has_truth]
    seen_mask = np.asarray(seen, dtype=bool)
    background_predicted = int(m[n, :n].sum() > 0)
    overall_denominator = int(counted.sum()) + (background_predicted if protocol == "pred-all" else 0)
    miou = float(iou[has_truth].sum() / overall_denominator * 100) if overall_denominator else None
    s = _mean(iou[seen_mask], has_truth[seen_mask], counted[seen_mask])
    u = _mean(iou[~seen_mask], has_truth[~seen_mask], counted[~seen_mask])
    h = (2 * s * u / (s + u) if s + u > 0 else 0.0) if s is not None and u is not None else None
    per_class = [float(v * 100) if t else None for v, t in zip(iou, has_truth)]
    return ProtocolScores(protocol, miou, s, u, h, per_class, m.copy())


def _prediction(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Segmenter labels (0 = none, i + 1 = query i) -> class ids with background = n."""
    return np.where(labels == 0, n_classes, labels.astype(np.int64) - 1)


@dataclass
class EvalReport:
    dataset: str
    classes: list[str]
    seen: list[bool]
    images: int
    records: int
    seconds: float
    results: dict[str, ProtocolScores]
    reports: PartReports | None = None  # with Pred-All
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset, "images": self.images, "records": self.records,
            "seconds": round(self.seconds, 1), **self.meta,
            "protocols": {
                name: {"mIoU": _round(s.miou), "mIoU-seen": _round(s.miou_seen), "mIoU-unseen": _round(s.miou_unseen),
                       "h-IoU": _round(s.h_iou),
                       "IoU": {c: _round(v) for c, v in zip(self.classes, s.iou)}}
                for name, s in self.results.items()
            },
            **({"reports": self.reports.to_json(self.classes)} if self.reports else {}),
        }

    def table(self) -> str:
        def f(v: float | None) -> str:
            return "-" if v is None else f"{v:6.2f}"

        names = list(self.results)
        reports = self.reports
        width = max(len(c) for c in self.classes) + 2
        head = f"{'class':<{width}} {'split':<7}" + "".join(f" {PROTOCOL_NAMES[n]:>10}" for n in names)
        if reports:
            head += f" {'Rep-Prec':>10} {'Rep-Rec':>10}"
        lines = [head, "-" * len(head)]
        for i, c in enumerate(self.classes):
            cells = "".join(f" {f(self.results[n].iou[i]):>10}" for n in names)
            if reports:
                cells += f" {f(reports.precision(i)):>10} {f(reports.recall(i)):>10}"
            lines.append(f"{c:<{width}} {'seen' if self.seen[i] else 'unseen':<7}{cells}")
        lines.append("-" * len(head))
        for label, key in (("mIoU", "miou"), ("mIoU-seen", "miou_seen"), ("mIoU-unseen", "miou_unseen"),
                           ("h-IoU", "h_iou")):
            cells = "".join(f" {f(getattr(self.results[n], key)):>10}" for n in names)
            lines.append(f"{label:<{width}} {'':<7}{cells}")
        if reports:
            lines.append(f"part reports (Pred-All masks of >= {reports.min_pixels} px, right when >= "
                         f"{reports.min_overlap:.0%} lie on the part): precision {f(reports.precision()).strip()}, "
                         f"recall {f(reports.recall()).strip()}, {reports.wrong_per_image:.2f} wrong per image")
        lines.append(f"{self.dataset}: {self.images} images, {self.records} records, {self.seconds:.0f} s")
        return "\n".join(lines)


def evaluate(
    segmenter: Segmenter, dataset: PartDataset, protocols: Sequence[str] = MODES, limit: int | None = None,
    progress: bool = False,
) -> EvalReport:
    """Run the protocols over (the first ``limit`` images of) ``dataset``."""
    from tqdm import tqdm

    unknown = [p for p in protocols if p not in MODES]
    if unknown or not protocols:
        raise ValueError(f"protocols must be among {MODES}, got {list(protocols)}")
    classes = dataset.classes
    n = len(classes.classes)
    if segmenter.max_queries < n:
        raise ValueError(f"the dataset has {n} classes; build the Segmenter with max_queries={n} to score them all")
    segmenter.set_queries(list(classes.classes))
    confusions = {p: Confusion(n) for p in protocols}
    reports = PartReports(n) if "pred-all" in confusions else None
    count = len(dataset) if limit is None else min(limit, len(dataset))
    images = records = 0
    start = time.perf_counter()
    for i in tqdm(range(count), disable=not progress, unit="img", desc="eval"):
        sample = dataset[i]
        objects = sample.records()
        if not objects:
            continue
        images += 1
        records += len(objects)
        encoding = segmenter.encode_image(sample.image)
        truths = [np.where((sample.objects == o) & (sample.parts != UNLABELLED), sample.parts, -1) for o in objects]
        if "pred-all" in confusions:
            prediction = _prediction(segmenter.decode(encoding, mode="pred-all").labels, n)
            for truth in truths:
                confusions["pred-all"].add(prediction, truth)
            reports.add(prediction, sample.parts)
        if "oracle" in confusions:
            for o, truth in zip(objects, truths):
                labels = segmenter.decode(encoding, mode="oracle", objects=[classes.objects[o]]).labels
                confusions["oracle"].add(_prediction(labels, n), truth)
    seen = [classes.is_seen(i) for i in range(n)]
    return EvalReport(
        dataset=dataset.describe(), classes=classes.names, seen=seen, images=images, records=records,
        seconds=time.perf_counter() - start, results={p: scores(c, seen, p) for p, c in confusions.items()},
        reports=reports,
    )
