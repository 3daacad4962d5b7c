"""The segmentation, detection, pose and VQA tasks on the one loop, through the command line: tiny runs write their run
folders (summary with the task's metrics, a figure of predictions), evaluate again from the folder, and resume."""

import json

import pytest

from dlbasics.cli import main

TINY = ["--n-train", "16", "--n-val", "8", "--n-test", "8", "--batch-size", "8", "--steps", "4", "--eval-every", "2",
        "--quiet"]
RUNS = {"unet": (["--widths", "4", "8", "16"], {"test_miou", "test_pixel_accuracy", "test_iou_circle"}),
        "centernet": (["--width", "8"], {"test_map50", "test_map75", "test_map"}),
        "keypoint_net": (["--width", "8"], {"test_pck10", "test_pck05", "test_error_px"}),
        "relation_net": (["--width", "8", "--hidden-size", "16"],
                         {"test_accuracy", "test_accuracy_nonrelational", "test_accuracy_relational"})}


@pytest.mark.parametrize("model", list(RUNS))
def test_a_run_folder_of_each_dense_task(model, tmp_path, capsys):
    options, metrics = RUNS[model]
    out = tmp_path / model
    assert main(["train", "--model", model, *options, *TINY, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert metrics <= set(summary) and summary["steps"] == 4
    assert (out / "predictions.png").is_file() and (out / "curves.png").is_file()
    capsys.readouterr()
    assert main(["evaluate", str(out)]) == 0
    printed = capsys.readouterr().out
    first = sorted(metrics)[0]
    assert f"{first} {summary[first]:.4f}" in printed  # the folder's model gives the summary's numbers again


def test_each_metric_is_in_a_valid_range(tmp_path):
    out = tmp_path / "seg"
    assert main(["train", "--model", "unet", "--widths", "4", "8", "16", "--loss", "cross_entropy_dice", *TINY,
                 "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert 0 <= summary["test_miou"] <= 1 and 0 <= summary["test_pixel_accuracy"] <= 1
    assert summary["best_val_miou"] >= summary["val_miou"] - 1e-12
