"""The vision metrics against references: the confusion matrix and IoU by hand and against scikit-learn, AP against
hand-computed curves and against pycocotools' own evaluation, PCK by hand."""

import numpy as np
import pytest

from dlbasics.train.vision_metrics import (
    average_precision,
    box_iou,
    confusion_matrix,
    detection_ap,
    pck,
    segmentation_scores,
)


def test_confusion_matrix_matches_scikit_learn():
    from sklearn.metrics import confusion_matrix as sk

    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 4, (5, 8, 8)), rng.integers(0, 4, (5, 8, 8))
    np.testing.assert_array_equal(confusion_matrix(p, t, 4), sk(t.ravel(), p.ravel(), labels=range(4)))


def test_miou_and_pixel_accuracy_by_hand():
    target = np.array([[0, 0, 1, 1], [0, 0, 2, 2]])
    pred = np.array([[0, 1, 1, 1], [0, 0, 2, 0]])
    s = segmentation_scores(confusion_matrix(pred, target, 4), ["bg", "a", "b", "c"])
    # bg: TP 3, FP 1, FN 1 -> 3/5; a: TP 2, FP 1 -> 2/3; b: TP 1, FN 1 -> 1/2; c: absent everywhere -> NaN, not counted
    assert s["iou_bg"] == pytest.approx(0.6) and s["iou_a"] == pytest.approx(2 / 3) and s["iou_b"] == 0.5
    assert np.isnan(s["iou_c"]) and s["miou"] == pytest.approx((0.6 + 2 / 3 + 0.5) / 3)
    assert s["pixel_accuracy"] == pytest.approx(6 / 8)
    all_background = segmentation_scores(confusion_matrix(np.zeros_like(target), target, 4))
    assert all_background["miou"] == pytest.approx(4 / 8 / 3)  # bg IoU 4/8, a and b 0


def test_box_iou():
    a = np.array([[0, 0, 10, 10], [5, 5, 15, 15]])
    b = np.array([[0, 0, 10, 10], [10, 10, 20, 20], [0, 0, 5, 5]])
    np.testing.assert_allclose(box_iou(a, b), [[1, 0, 0.25], [25 / 175, 25 / 175, 0]])


def test_voc_all_point_average_precision_by_hand():
    # ranked: TP, FP, TP of 2 ground-truth boxes: recall .5 .5 1, precision 1 .5 .667 -> envelope 1 .667 .667
    ap = average_precision(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3]))
    assert ap == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)
    dets = [(np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([0.9, 0.8]), np.array([0, 0])),
            (np.array([[0, 0, 10, 10]]), np.array([0.7]), np.array([0]))]
    truths = [(np.array([[0, 0, 10, 10]]), np.array([0])), (np.array([[1, 1, 10, 10]]), np.array([0]))]
    assert detection_ap(dets, truths, 1, 0.5)["map"] == pytest.approx(ap)
    assert detection_ap(dets, truths, 1, 0.9)["map"] == pytest.approx(0.5)  # the second image's box: IoU 0.81


def test_duplicates_are_false_positives_and_classes_without_truth_are_not_averaged():
    box = np.array([[0, 0, 10, 10]])
    dets = [(np.concatenate([box, box]), np.array([0.9, 0.8]), np.array([0, 0]))]
    r = detection_ap(dets, [(box, np.array([0]))], num_classes=2)
    assert r["ap_0"] == pytest.approx(1.0) and np.isnan(r["ap_1"]) and r["map"] == pytest.approx(1.0)


def random_detections(seed, images=30, classes=3):
    rng = np.random.default_rng(seed)
    dets, truths = [], []
    for _ in range(images):
        g = rng.integers(1, 5)
        xy = rng.uniform(0, 50, (g, 2))
        gb = np.concatenate([xy, xy + rng.uniform(5, 15, (g, 2))], 1)
        gl = rng.integers(0, classes, g)
        k = rng.integers(0, 7)
        pick = rng.integers(0, g, k)
        db = gb[pick] + rng.normal(0, 2.5, (k, 4))  # near a true box, sometimes with the wrong class, plus noise
        db[:, 2:] = np.maximum(db[:, 2:], db[:, :2] + 1)
        dl = np.where(rng.random(k) < 0.8, gl[pick], rng.integers(0, classes, k))
        dets.append((db, rng.random(k), dl))
        truths.append((gb, gl))
    return dets, truths


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threshold", [0.5, 0.75])
def test_coco_interpolation_matches_pycocotools(seed, threshold):
    pytest.importorskip("pycocotools")
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    dets, truths = random_detections(seed)
    gt = {"images": [{"id": i, "width": 80, "height": 80} for i in range(len(truths))],
          "categories": [{"id": c} for c in range(3)], "annotations": []}
    results = []
    for i, ((gb, gl), (db, ds, dl)) in enumerate(zip(truths, dets)):
        for b, lab in zip(gb, gl):
            w, h = b[2] - b[0], b[3] - b[1]
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i, "category_id": int(lab),
                                      "bbox": [b[0], b[1], w, h], "area": w * h, "iscrowd": 0})
        results += [{"image_id": i, "category_id": int(lab), "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                     "score": float(s)} for b, s, lab in zip(db, ds, dl)]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(results), "bbox")
        ev.params.iouThrs = np.array([threshold])
        ev.params.areaRng, ev.params.areaRngLbl = [[0, 1e10]], ["all"]
        ev.evaluate()
        ev.accumulate()
    prec = ev.eval["precision"][0, :, :, 0, -1]  # (recall levels, classes)
    theirs = [np.mean(prec[:, c]) if (prec[:, c] > -1).any() else np.nan for c in range(3)]
    ours = detection_ap(dets, truths, 3, threshold, interpolation="coco")
    np.testing.assert_allclose([ours[f"ap_{c}"] for c in range(3)], theirs, atol=1e-9)


def test_pck_by_hand():
    target = np.array([[[0.0, 0.0], [10.0, 0.0], [0.0, 20.0]]])  # box 10 x 20: size 20
    pred = target + np.array([[[1.0, 0.0], [0.0, 2.5], [0.0, 0.5]]])
    assert pck(pred, target, 0.1) == pytest.approx(2 / 3)  # within 2 px: the first and the last
    assert pck(pred, target, 0.05) == pytest.approx(2 / 3) and pck(pred, target, 0.03) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match=r"pck: expected predictions and targets \(N, J, 2\)"):
        pck(pred[0], target[0])
