"""How the model's variables are named in checkpoints, and reading/writing them.

Every model variable is stored under ``model/<keras variable path>`` (e.g.
``model/fpn_output3/kernel``), independent of how the Python object graph nests the layers; the
training checkpoints (:mod:`maskrcnn_body.training.checkpoints`) add the optimizer and the step
beside them. Loading for inference needs only this module.
"""

from __future__ import annotations

import os
import re
from typing import Dict

import tensorflow as tf

from maskrcnn_body.config.train_dir import TrainDir

VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
MODEL_PREFIX = "model/"


def escape_name(name: str) -> str:
    """The object-graph escaping TensorFlow applies to a child name in checkpoint keys."""
    return name.replace(".", "..").replace("/", ".S")


def unescape_name(key: str) -> str:
    """Inverse of :func:`escape_name`."""
    return re.sub(r"\.(S|\.)", lambda m: "/" if m.group(1) == "S" else ".", key)


def model_variable_key(variable) -> str:
    """The checkpoint key under which a Keras model variable is stored."""
    return escape_name(MODEL_PREFIX + variable.path) + VALUE_SUFFIX


def named_model_variables(model) -> Dict[str, tf.Variable]:
    """``{"model/<path>": keras variable}`` for every model variable (paths must be unique)."""
    named = {}
    for v in model.variables:
        key = MODEL_PREFIX + v.path
        if key in named:
            raise ValueError(f"two model variables share the path {v.path!r}; give the layers unique names")
        named[key] = v
    return named


def restore_model_weights(model, path: str) -> None:
    """Loads every model variable from checkpoint prefix ``path`` (optimizer state is ignored);
    raises ``AssertionError``/``ValueError`` when a model variable is missing from it."""
    tf.train.Checkpoint(**named_model_variables(model)).restore(path).expect_partial().assert_existing_objects_matched()


def save_model_weights(model, directory: str, step: int = 0) -> str:
    """Writes the model variables as checkpoint ``directory/ckpt-<step>`` (the trainer's layout,
    without optimizer state) and the ``checkpoint`` state file; returns the prefix."""
    os.makedirs(directory, exist_ok=True)
    step_var = tf.Variable(step, dtype=tf.int64, trainable=False, name="train_step")
    ckpt = tf.train.Checkpoint(step=step_var, **named_model_variables(model))
    train_dir = TrainDir(directory)
    ckpt.save_counter.assign(1)  # created and saved, as CheckpointManager.save does (restores check it)
    prefix = ckpt.write(train_dir.checkpoint(step))
    earlier = [p for p in reversed(train_dir.checkpoints()) if os.path.abspath(p) != os.path.abspath(prefix)]
    train_dir.write_state(earlier + [prefix])  # oldest first, this one newest
    return prefix
