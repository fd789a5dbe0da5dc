"""tf.distribute strategy selection and worker roles.

``--strategy`` values:

* ``"default"``: no distribution (the default strategy, one device);
* ``"mirrored"``: ``tf.distribute.MirroredStrategy`` over all local GPUs (on a CPU-only
  machine: one replica on the CPU);
* ``"multi_worker"``: ``tf.distribute.MultiWorkerMirroredStrategy`` configured by the standard
  ``TF_CONFIG`` environment variable (see docs/TRAINING.md). It must be created before any
  other TensorFlow op runs, so create the strategy first thing in a program.

The global batch is split evenly across ``strategy.num_replicas_in_sync`` replicas.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from maskrcnn_body.errors import InvalidArgument

STRATEGIES = ("default", "mirrored", "multi_worker")


def make_strategy(name: str = "default") -> tf.distribute.Strategy:
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy(devices=[d.name for d in gpus] or ["/cpu:0"])
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise InvalidArgument(
                "--strategy=multi_worker needs the TF_CONFIG environment variable "
                "(cluster + task); see docs/TRAINING.md"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise InvalidArgument(f"unknown strategy {name!r}; choose one of {STRATEGIES}")


def task_info() -> tuple[str, int]:
    """(task type, task index) from TF_CONFIG; ``("chief", 0)`` when not set."""
    cfg = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = cfg.get("task", {})
    return task.get("type", "chief"), int(task.get("index", 0))


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that writes checkpoints, summaries and images.

    In a multi-worker cluster without a ``chief`` task, worker 0 is the chief.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = task_info()
    return task_type == "chief" or (task_type == "worker" and task_id == 0)


def per_replica_batch(global_batch: int, strategy: tf.distribute.Strategy) -> int:
    n = strategy.num_replicas_in_sync
    if global_batch % n:
        raise InvalidArgument(
            f"global batch size {global_batch} is not divisible by the {n} replicas; use a multiple of {n}"
        )
    return global_batch // n
