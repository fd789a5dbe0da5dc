"""The real pieces together at tiny sizes: synthetic records -> pipeline -> Mask R-CNN ->
trainer (2 steps, checkpoint) -> resume -> detections written as evaluation dumps."""

import numpy as np
import pytest
import tensorflow as tf

from helpers.kernels import convolutions_refuse_empty_batches
from maskrcnn_body.config import get_config
from maskrcnn_body.data import pipeline
from maskrcnn_body.evaluation import dumps
from maskrcnn_body.inference.record_dumps import write_dumps
from maskrcnn_body.training.trainer import RunOptions, Trainer

pytestmark = pytest.mark.slow  # the real model trained: `make test-fast` leaves these out


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    from maskrcnn_body.convert.synthetic import write_dataset

    prefix = str(tmp_path_factory.mktemp("records") / "syn")
    write_dataset(prefix, 4, 2, seed=0, size=64, num_shards=1, num_workers=1, progress=False)
    return prefix + "_train-*.tfrecord", prefix + "_val-*.tfrecord"


def test_real_model_trains_resumes_and_dumps(records, tmp_path):
    from maskrcnn_body.model.maskrcnn import build_model

    train, val = records
    cfg = get_config(
        "cpu_small",
        **{
            "train.batch_size": 2,
            "train.max_images": 4,
            "train.checkpoint_every": 0,
            "train.log_every": 1,
            "train.warmup_images": 2,
        },
    )
    cfg.input.min_size = cfg.input.max_size = 64

    def dataset_fn(b):
        return pipeline.build_dataset(train, cfg.input, b, training=True, seed=0)

    tr = Trainer(cfg, build_model, dataset_fn, str(tmp_path / "run"), options=RunOptions(progress=False))
    result = tr.train()
    assert result.step == 2 and result.skipped_steps == 0
    assert all(np.isfinite(result.logs[k]) for k in ("total", "mask", "point", "keypoint", "rpn_class"))
    assert tf.train.latest_checkpoint(str(tmp_path / "run")).endswith("ckpt-2")

    again = Trainer(cfg, build_model, dataset_fn, str(tmp_path / "run"), options=RunOptions(progress=False))
    assert again.restore().endswith("ckpt-2") and again.step == 2
    for a, b in zip(tr.model.weights, again.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())

    paths = write_dumps(again.model, val, cfg, str(tmp_path / "dumps"))
    assert len(paths) == 2
    d = dumps.read_dump(paths[0])
    assert d["image"].shape == (64, 64, 3) and d["masks"].shape[1:] == (112, 112, 7)  # point-refined
    assert d["gt_parts"].shape[1:] == (64, 64) and len(d["boxes"]) == len(d["scores"])


def test_batch_size_one_trains_through_images_without_people(tmp_path):
    """Real datasets have negatives: at batch size 1 a step without a person has no positive RoI.
    With convolutions that refuse an empty batch (as oneDNN's do on an Intel Xeon) every step
    still trains: finite losses and no step skipped."""
    from maskrcnn_body.data import schema, synthetic, writer
    from maskrcnn_body.model.maskrcnn import build_model

    size = 64
    recs = []
    for i in range(4):
        r = synthetic.render_image(0, "train", i, size, size)
        if i % 2:  # every other image: the same picture with no person annotated
            r = schema.ImageRecord(r.image_bytes, r.image_format, size, size, f"empty-{i}", "synthetic", [])
        recs.append(schema.encode_example(r))
    path = str(tmp_path / "mixed")
    writer.write_records(path, recs)
    assert sum(len(schema.decode_example(x).persons) == 0 for x in recs) >= 2
    cfg = get_config(
        "cpu_small",
        **{
            "train.batch_size": 1,
            "train.max_images": 4,
            "train.checkpoint_every": 0,
            "train.log_every": 1,
            "train.warmup_images": 1,
        },
    )
    cfg.input.min_size = cfg.input.max_size = size
    cfg.input.flip = False

    def dataset_fn(b):
        return pipeline.build_dataset(path + "*", cfg.input, b, training=True, seed=0)

    with convolutions_refuse_empty_batches():  # 4 steps at batch 1 = one epoch: both empty images
        tr = Trainer(cfg, build_model, dataset_fn, str(tmp_path / "run"), options=RunOptions(progress=False))
        result = tr.train()
    assert result.step == 4 and result.skipped_steps == 0
    assert all(np.isfinite(v) for v in result.logs.values())
