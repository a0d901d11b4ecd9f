"""Benchmark metrics against hand-computed confusion matrices, and the eval loop on a real model and dataset."""
import numpy as np
import pytest

from partclipseg.data.synth import SceneConfig, generate
from partclipseg.data import open_dataset
from partclipseg.evaluate import Confusion, PartReports, evaluate, scores
from partclipseg.segmenter import Segmenter

SEEN = [True, True, False]  # 0 mug/body, 1 mug/handle (seen), 2 pot/body (unseen)


def test_pred_all_matrix_and_scores_by_hand():
    confusion = Confusion(3)
    truth = np.array([0, 0, 0, 1, 1, 2, 2, -1])
    prediction = np.array([0, 0, 3, 1, 0, 2, 1, 0])  # 3 = background; the last pixel is not scored
    confusion.add(prediction, truth)
    expected = np.zeros((4, 4), dtype=np.int64)
    for p, t in [(0, 0), (0, 0), (3, 0), (1, 1), (0, 1), (2, 2), (1, 2)]:
        expected[p, t] += 1
    assert np.array_equal(confusion.matrix, expected)
    s = scores(confusion, SEEN, "pred-all")
    # TP [2, 1, 1]; GT (incl. parts predicted as background) [3, 2, 2]; predicted [3, 2, 1]
    assert s.iou == pytest.approx([100 * 2 / 4, 100 * 1 / 3, 100 * 1 / 2])
    assert s.miou == pytest.approx(100 * (0.5 + 1 / 3 + 0.5) / 4)  # background predicted -> a 4th (zero) entry
    assert s.miou_seen == pytest.approx(100 * (0.5 + 1 / 3) / 2)
    assert s.miou_unseen == pytest.approx(50.0)
    assert s.h_iou == pytest.approx(2 * s.miou_seen * 50 / (s.miou_seen + 50))


def test_oracle_matrix_and_scores_by_hand():
    confusion = Confusion(3)
    confusion.add(np.array([[0, 1], [1, 2]]), np.array([[0, 0], [1, 1]]))
    expected = np.zeros((4, 4), dtype=np.int64)
    expected[0, 0] = expected[1, 0] = expected[1, 1] = expected[2, 1] = 1
    assert np.array_equal(confusion.matrix, expected)
    s = scores(confusion, SEEN, "oracle")
    assert s.iou[0] == pytest.approx(50.0) and s.iou[1] == pytest.approx(100 / 3) and s.iou[2] is None
    # class 2 has no ground truth but was predicted: it counts as a zero in the means (official formula)
    assert s.miou == pytest.approx(100 * (0.5 + 1 / 3) / 3)
    assert s.miou_seen == pytest.approx(100 * (0.5 + 1 / 3) / 2)
    assert s.miou_unseen == 0.0 and s.h_iou == 0.0
    none = scores(Confusion(3), SEEN, "oracle")
    assert none.miou is None and none.h_iou is None


def test_part_reports_by_hand():
    reports = PartReports(3, min_pixels=2, min_overlap=0.5)
    # class 0: 4 px predicted, 2 on mug/body (right, present); class 1: 3 px predicted, 2 of them on pot/body
    # (wrong), its one labelled pixel too few to be present; class 2: present (3 px), 1 px predicted (no report)
    truth = np.array([0, 0, 0, 2, 2, 2, 1, -1, -1])
    prediction = np.array([0, 0, 1, 1, 1, 2, 0, 0, 3])  # 3 = background
    reports.add(prediction, truth)
    assert list(reports.reported) == [1, 1, 0] and list(reports.right) == [1, 0, 0]
    assert list(reports.present) == [1, 0, 1] and list(reports.found) == [1, 0, 0]
    # a second image: class 1 reported on a part of class 0 only -> wrong; nothing present
    reports.add(np.array([1, 1, 3]), np.array([0, -1, -1]))
    assert list(reports.reported) == [1, 2, 0] and list(reports.right) == [1, 0, 0]
    assert reports.precision() == pytest.approx(100 / 3) and reports.recall() == pytest.approx(50.0)
    assert reports.precision(1) == 0.0 and reports.precision(2) is None and reports.recall(2) == 0.0
    assert reports.wrong_per_image == pytest.approx(1.0)
    data = reports.to_json(["mug/body", "mug/handle", "pot/body"])
    assert data["classes"]["mug/handle"] == {"reported": 2, "right": 0, "present": 0, "found": 0}
    assert data["precision"] == pytest.approx(33.33) and data["wrong_per_image"] == 1.0


@pytest.fixture(scope="module")
def tiny_synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generate(root, train=2, val=3, seed=5, unseen=["kettle"], config=SceneConfig(96, 72, min_objects=2), progress=False)
    return root


def test_evaluate_counts_every_labelled_part_pixel_once_per_protocol(tiny_model, tiny_synthetic):
    dataset = open_dataset(tiny_synthetic, "val")
    with pytest.raises(ValueError, match="max_queries=21"):
        evaluate(Segmenter(tiny_model), dataset)  # 21 classes, the serving default allows 16
    report = evaluate(Segmenter(tiny_model, max_queries=21), dataset)
    labelled = sum(int(((s.parts >= 0) & (s.objects >= 0)).sum()) for s in (dataset[i] for i in range(len(dataset))))
    assert report.records == sum(len(dataset[i].records()) for i in range(len(dataset))) > 0
    for protocol in ("pred-all", "oracle"):
        assert report.results[protocol].confusion.sum() == labelled
    oracle = report.results["oracle"].confusion
    assert oracle[-1].sum() == 0  # Oracle-Obj never predicts background
    classes = dataset.classes
    for predicted, truth in zip(*np.nonzero(oracle)):  # ... nor a part of another object
        assert classes.classes[predicted].object == classes.classes[truth].object
    data = report.to_json()
    assert set(data["protocols"]) == {"pred-all", "oracle"}
    reports = report.reports  # counted on the same Pred-All predictions, every image once
    assert reports.images == report.images and (reports.right <= reports.reported).all()
    assert (reports.found <= reports.present).all() and (reports.found <= reports.right).all()
    assert data["reports"]["min_pixels"] == 10 and "Rep-Prec" in report.table()
    assert "reports" not in evaluate(Segmenter(tiny_model, max_queries=21), dataset, ["oracle"], limit=1).to_json()
    assert "mIoU-unseen" in report.table() and tiny_synthetic.name in report.dataset
