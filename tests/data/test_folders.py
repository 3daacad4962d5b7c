"""The real formats: COCO-style JSON (boxes and keypoints) and folders of PNG masks, written here from shapes-world
scenes and read back to the same arrays; the dense models train on them from the command line."""

import json

import numpy as np
import pytest
from PIL import Image

from dlbasics.cli import main
from dlbasics.data.datasets import load
from dlbasics.data.datasets.shapes import JOINTS, object_scenes, pose_scenes
from dlbasics.errors import DataError, DataNotFoundError


def _png(array, file):
    Image.fromarray(array).save(file)


def write_coco(root, n=10, keypoints=False):
    (root / "images").mkdir(parents=True)
    if keypoints:
        images, kp = pose_scenes(n, seed=5)
        classes = np.ones((n, 1), np.int64)
        boxes = np.concatenate([kp.min(1), kp.max(1)], 1)[:, None]
    else:
        images, _, classes, boxes = object_scenes(n, seed=5)
    doc = {"images": [], "annotations": [], "categories": [{"id": 7, "name": "circle"}, {"id": 8, "name": "square"},
                                                           {"id": 9, "name": "triangle"}]}
    if keypoints:
        doc["categories"] = [{"id": 1, "name": "figure", "keypoints": list(JOINTS)}]
    for i in range(n):
        _png(np.round(images[i].transpose(1, 2, 0) * 255).astype(np.uint8), root / "images" / f"s{i}.png")
        doc["images"].append({"id": 100 + i, "file_name": f"s{i}.png", "width": 64, "height": 64})
        for c, (x0, y0, x1, y1) in zip(classes[i], boxes[i]):
            if c < 0:
                continue
            ann = {"id": len(doc["annotations"]) + 1, "image_id": 100 + i, "category_id": int(c) + (0 if keypoints
                   else 6), "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]}
            if keypoints:
                ann["keypoints"] = [float(v) for xy in kp[i] for v in (*xy, 2)]
            doc["annotations"].append(ann)
    (root / "annotations.json").write_text(json.dumps(doc))
    return images, classes, boxes, (kp if keypoints else None)


def test_coco_boxes_read_back(tmp_path):
    images, classes, boxes, _ = write_coco(tmp_path)
    splits = load("coco", path=str(tmp_path / "annotations.json"), val=2, test=2)
    assert splits.info.task == "detection" and splits.info.classes == ("circle", "square", "triangle")
    x = np.concatenate([s.arrays[0] for s in splits])
    objects = np.concatenate([s.arrays[1] for s in splits])
    match = [int(np.abs(images - xi).sum(axis=(1, 2, 3)).argmin()) for xi in x]  # the split shuffles the images
    assert sorted(match) == list(range(len(images))) and np.abs(x - images[match]).max() <= 0.5 / 255  # 8-bit PNGs
    for got, c, b in zip(objects, classes[match], boxes[match]):
        k = (c >= 0).sum()
        np.testing.assert_array_equal(got[:k, 0], c[:k])
        np.testing.assert_allclose(got[:k, 1:], b[:k], atol=1e-5)
        assert (got[k:, 0] == -1).all()


def test_coco_keypoints_and_a_resize(tmp_path):
    _, _, _, kp = write_coco(tmp_path, keypoints=True)
    splits = load("coco", path=str(tmp_path / "annotations.json"), labels="keypoints", image_size=32, val=2, test=2)
    assert splits.info.task == "pose" and splits.info.classes == JOINTS
    got = np.concatenate([s.arrays[1] for s in splits])
    assert got.shape == (10, 7, 2) and splits.train.arrays[0].shape[1:] == (3, 32, 32)
    assert sorted(np.round(got.sum(axis=(1, 2)), 3)) == sorted(np.round(kp.sum(axis=(1, 2)) / 2, 3))  # halved


def test_png_masks_read_back(tmp_path):
    images, masks, _, _ = object_scenes(8, seed=2)
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    for i in range(8):
        _png(np.round(images[i].transpose(1, 2, 0) * 255).astype(np.uint8), tmp_path / "images" / f"{i}.png")
        _png(masks[i].astype(np.uint8), tmp_path / "masks" / f"{i}.png")
    splits = load("masks", path=str(tmp_path), val=2, test=2)
    assert splits.info.task == "segmentation" and splits.info.num_classes == 4
    y = np.concatenate([s.arrays[1] for s in splits])
    assert sorted(int(m.sum()) for m in y) == sorted(int(m.sum()) for m in masks)


def test_bad_files_are_one_line_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="no such COCO annotation file"):
        load("coco", path=str(tmp_path / "none.json"))
    (tmp_path / "bad.json").write_text("{\"images\": []}")
    with pytest.raises(DataError, match="not a COCO annotation file"):
        load("coco", path=str(tmp_path / "bad.json"))
    with pytest.raises(DataNotFoundError, match="expected a folder with images/ and masks/"):
        load("masks", path=str(tmp_path))


@pytest.mark.parametrize("model, extra", [("centernet", []), ("keypoint_net", ["--labels", "keypoints"])])
def test_the_dense_models_train_on_coco_files(model, extra, tmp_path, capsys):
    write_coco(tmp_path / "coco", n=12, keypoints=bool(extra))
    out = tmp_path / "run"
    assert main(["train", "--model", model, "--data", f"coco:{tmp_path / 'coco' / 'annotations.json'}", *extra,
                 "--width", "8", "--steps", "2", "--batch-size", "4", "--val", "4", "--test", "4", "--quiet",
                 "--out", str(out)]) == 0
    assert (out / "predictions.png").is_file()
