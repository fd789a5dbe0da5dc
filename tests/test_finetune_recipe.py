"""The fine-tuning recipe of docs/TRAINING.md, end to end at tiny sizes, through the scripts a user
types: a local ImageNet-style weights file, the real Pascal-Part fixtures converted by the converter,
a few steps of r50_fpn_imagenet (shrunk with --set), evaluation and export."""

import json

import pytest

from helpers.recipe import ROOT, SHRINK, imagenet_standin, run_script

pytestmark = pytest.mark.slow  # three processes with ResNet-50: `make test-fast` leaves it out


def test_finetune_recipe_on_pascal_part(tmp_path, fixtures_dir):
    weights = imagenet_standin(tmp_path / "resnet50_imagenet.weights.h5")  # stands in for the ImageNet download

    out = run_script(
        [
            ROOT / "convert_data" / "convert_pascal_part.py",
            "--root",
            fixtures_dir / "pascal_part",
            "--out",
            "records/pascal_part",
            "--noprogress",
        ],
        tmp_path,
    )
    assert "images" in out and list((tmp_path / "records").glob("pascal_part-*.tfrecord"))

    out = run_script(
        [
            ROOT / "train" / "train.py",
            "--preset",
            "r50_fpn_imagenet",
            "--set",
            f"model.backbone.weights={weights}",
            "--records",
            "records/pascal_part-*",
            "--val_records",
            "records/pascal_part-*",
            "--batch_size",
            "1",
            "--max_steps",
            "3",
            "--set",
            "train.checkpoint_every=0",
            "--set",
            "train.log_every=1",
            "--train_dir",
            "run",
            "--eval_images",
            "2",
            *SHRINK,
        ],
        tmp_path,
    )
    # the effective per-step values are printed: 0.02 per 16 images at batch 1
    assert "learning rate 0.00125 (0.02 per 16 images x 1/16" in out and "3 steps" in out
    assert "finished at step 3" in out and "COCO AP" in out
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["model"]["backbone"]["norm"] == "frozen_bn" and cfg["model"]["backbone"]["freeze_at"] == 2

    out = run_script(
        [
            ROOT / "train" / "evaluate.py",
            "--train_dir",
            "run",
            "--records",
            "records/pascal_part-*",
            "--dump_dir",
            "dumps",
            "--max_images",
            "3",
        ],
        tmp_path,
    )
    assert "wrote 3 dumps" in out
    metrics = json.loads((tmp_path / "dumps" / "metrics.json").read_text())
    assert set(metrics) >= {"box", "mask", "parsing", "keypoints"}

    out = run_script(
        [ROOT / "train" / "export.py", "--train_dir", "run", "--saved_model", "export/saved_model"], tmp_path
    )
    assert (tmp_path / "export" / "saved_model" / "saved_model.pb").exists()
