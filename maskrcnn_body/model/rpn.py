"""Region Proposal Network: the head shared across pyramid levels, and the unit that turns its
outputs into proposals (and, in training, anchor targets and losses).

For a level of size (Hl, Wl) with A = ``anchors.per_location`` anchors per location the head gives
objectness logits (B, Hl, Wl, A) and box deltas (B, Hl, Wl, 4A); :func:`flatten_level_outputs`
turns them into (B, Hl*Wl*A) and (B, Hl*Wl*A, 4) in the (row, column, anchor) order that
``ops.anchors`` uses.
"""

from __future__ import annotations

from typing import List, NamedTuple, Tuple

import keras
import tensorflow as tf

from maskrcnn_body.config import AnchorConfig, RpnConfig
from maskrcnn_body.model import losses, postprocess
from maskrcnn_body.model.conv import Conv2D
from maskrcnn_body.ops import anchors as anchor_ops
from maskrcnn_body.ops import targets


def build_rpn_head(channels: int, anchors_per_location: int) -> keras.Model:
    """Functional model: one FPN level (B, Hl, Wl, channels) -> (logits, deltas)."""
    a = anchors_per_location
    inputs = keras.Input((None, None, channels), name="rpn_features")
    x = Conv2D(channels, 3, padding="same", activation="relu", name="rpn_conv")(inputs)
    logits = Conv2D(a, 1, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01), name="rpn_class")(x)
    deltas = Conv2D(4 * a, 1, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01), name="rpn_box")(x)
    return keras.Model(inputs, [logits, deltas], name="rpn_head")


def flatten_level_outputs(logits: tf.Tensor, deltas: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """One level's (B, Hl, Wl, A) logits and (B, Hl, Wl, 4A) deltas -> float32 (B, Hl*Wl*A) and
    (B, Hl*Wl*A, 4), in the (row, column, anchor) order of ``ops.anchors``."""
    b = tf.shape(logits)[0]
    return (tf.reshape(tf.cast(logits, tf.float32), [b, -1]), tf.reshape(tf.cast(deltas, tf.float32), [b, -1, 4]))


class RpnOutput(NamedTuple):
    logits: List[tf.Tensor]  # per level (B, N_l) float32 objectness logits
    deltas: List[tf.Tensor]  # per level (B, N_l, 4) float32 box deltas
    anchors: List[tf.Tensor]  # per level (N_l, 4) image pixels
    proposals: tf.Tensor  # (B, K, 4) image pixels (0 where padded), K = post-NMS top-k
    valid: tf.Tensor  # (B, K) bool


class RegionProposalNetwork:
    """Anchors + RPN head -> proposals; in training also the anchor targets and RPN losses.

    Holds a reference to the RPN head (a Keras sub-model owned, and saved, by the model).
    """

    def __init__(self, head: keras.Model, anchors: AnchorConfig, cfg: RpnConfig):
        self.head, self.anchor_cfg, self.cfg = head, anchors, cfg

    def __call__(
        self, feats: List[tf.Tensor], image_size: Tuple[int, int], image_shape: tf.Tensor, training: bool
    ) -> RpnOutput:
        """Proposals for P2..P{max_level} ``feats`` of a padded (H, W) = ``image_size`` batch whose
        valid sizes are ``image_shape`` (B, 2) int32 (proposals are clipped to them)."""
        c = self.cfg
        flat = [flatten_level_outputs(*self.head(f, training=training)) for f in feats]
        logits, deltas = [f[0] for f in flat], [f[1] for f in flat]
        anchors, _ = anchor_ops.generate_anchors_for_config(self.anchor_cfg, image_size)
        pre, post = (
            (c.pre_nms_topk_train, c.post_nms_topk_train) if training else (c.pre_nms_topk_test, c.post_nms_topk_test)
        )
        proposals, valid = postprocess.generate_proposals(
            logits, deltas, anchors, image_shape, pre, post, c.nms_iou, c.min_box_size
        )
        return RpnOutput(logits, deltas, anchors, proposals, valid)

    def losses(
        self, out: RpnOutput, gt_boxes: tf.Tensor, num_gt: tf.Tensor, image_shape: tf.Tensor
    ) -> Tuple[tf.Tensor, tf.Tensor]:
        """(objectness loss, box loss) float32 scalars: anchors matched to GT ``gt_boxes`` (B, P, 4)
        (first ``num_gt`` (B,) rows real) and sampled (``ops.targets.rpn_targets``); anchors centred
        in the padding outside ``image_shape`` (B, 2) are never sampled as negatives."""
        t = targets.rpn_targets(tf.concat(out.anchors, 0), gt_boxes, num_gt, self.cfg, image_shape=image_shape)
        return losses.rpn_losses(tf.concat(out.logits, 1), tf.concat(out.deltas, 1), t.labels, t.box_targets)
