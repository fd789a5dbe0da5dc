"""The distributed train step: losses -> gradients -> all-reduce -> clip -> finite check -> apply.

Loss scaling across replicas: ``model.compute_losses`` returns losses averaged over its
per-replica batch; each replica differentiates ``total / num_replicas`` and the gradients are
summed over replicas (``ReplicaContext.all_reduce(SUM)``), which gives the gradient of the mean
loss over the global batch. The global norm is computed on that all-reduced gradient, so
clipping (``clip_norm``) and the non-finite check see the same values on every replica and all
replicas take the same skip/apply decision.

Keras 3 optimizers all-reduce (SUM) the gradients they are given once more inside
``apply``; the step therefore hands them ``reduced / num_replicas`` (exact for one replica).

A step whose loss or gradient is not finite changes no weights and no optimizer state; with
``LossScaleOptimizer`` (mixed_float16) the optimizer lowers its loss scale instead.
"""

from __future__ import annotations

from typing import Callable, Dict

import tensorflow as tf

from maskrcnn_body.training.optimizers import is_loss_scaled

SUM = tf.distribute.ReduceOp.SUM
MEAN = tf.distribute.ReduceOp.MEAN


def _apply_if(optimizer, grads, variables, finite) -> None:
    """``optimizer.apply(grads, variables)`` when ``finite`` (a replica-identical bool), in a
    replica context. Follows Keras' LossScaleOptimizer: a ``cond`` around an ``apply`` that
    needs ``merge_call`` must be taken in the cross-replica context."""

    def apply():
        optimizer.apply(grads, variables)
        return tf.constant(True)

    if tf.__internal__.distribute.strategy_supports_no_merge_call():
        tf.cond(finite, apply, lambda: tf.constant(False))
        return

    def cross_replica(distribution, grads, finite):
        first = distribution.experimental_local_results(finite)[0]

        def apply_all():
            distribution.extended.call_for_each_replica(lambda g: optimizer.apply(g, variables), args=(grads,))
            return tf.constant(True)

        tf.cond(first, apply_all, lambda: tf.constant(False))

    tf.distribute.get_replica_context().merge_call(cross_replica, args=(grads, finite))


def make_train_step(
    model, optimizer, strategy: tf.distribute.Strategy, clip_norm: float
) -> Callable[[object], Dict[str, tf.Tensor]]:
    """A ``tf.function`` ``step(batch) -> dict`` running one step on a global batch, as
    ``next(iterator)`` of ``strategy.experimental_distribute_dataset`` gives it (the caller holds
    the batch, so an error can name its ``source_id`` s).

    The returned dict holds float32 scalars: every loss term of ``compute_losses`` averaged
    over replicas, ``grad_norm`` (global norm of the mean gradient, before clipping) and
    ``finite`` (1.0 if the step was applied, 0.0 if skipped).
    """
    n = strategy.num_replicas_in_sync
    scaled = is_loss_scaled(optimizer)

    def replica_step(batch):
        variables = model.trainable_variables
        with tf.GradientTape() as tape:
            losses = model.compute_losses(batch, training=True)
            losses = {k: tf.cast(v, tf.float32) for k, v in losses.items()}
            loss = losses["total"] / n
            if scaled:
                loss = optimizer.scale_loss(loss)
        grads = tape.gradient(loss, variables)
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        if not pairs:
            raise ValueError("compute_losses()['total'] does not depend on any trainable variable")
        grads = [tf.cast(g, tf.float32) for g, _ in pairs]
        variables = [v for _, v in pairs]
        ctx = tf.distribute.get_replica_context()
        grads = ctx.all_reduce(SUM, grads)
        total = ctx.all_reduce(SUM, loss)
        norm = tf.linalg.global_norm(grads)
        if scaled:
            norm = norm / tf.cast(optimizer.dynamic_scale, tf.float32)
        finite = tf.logical_and(tf.math.is_finite(norm), tf.math.is_finite(total))
        factor = tf.minimum(1.0, clip_norm / tf.maximum(norm, 1e-12)) if clip_norm else 1.0
        # a bad step's gradients are made NaN outright so LossScaleOptimizer sees it too
        grads = [g * tf.where(finite, factor / n, float("nan")) for g in grads]
        if scaled:
            optimizer.apply(grads, variables)  # skips non-finite and lowers the scale itself
        else:
            _apply_if(optimizer, grads, variables, finite)
        out = dict(losses)
        out["grad_norm"] = norm
        out["finite"] = tf.cast(finite, tf.float32)
        return out

    # images are padded per batch (sizes vary with the data and the scale jitter): after a second
    # size the trace is relaxed to unknown height/width, so a run traces at most twice
    @tf.function(reduce_retracing=True)
    def step(batch):
        per_replica = strategy.run(replica_step, args=(batch,))
        return {k: strategy.reduce(MEAN, v, axis=None) for k, v in per_replica.items()}

    return step
