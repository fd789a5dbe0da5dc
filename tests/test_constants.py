"""constants: the one rounding rule of padded sizes (``ceil_div``, ``round_up``)."""

import numpy as np
import tensorflow as tf

from maskrcnn_body.constants import SIZE_DIVISOR, ceil_div, round_up


def test_round_up_ints_arrays_and_tensors():
    assert [round_up(n) for n in (0, 1, 31, 32, 33, 64, 65)] == [0, 32, 32, 32, 64, 64, 96]
    assert round_up(5, 4) == 8 and ceil_div(5, 4) == 2 and ceil_div(8, 4) == 2
    assert isinstance(round_up(33), int) and SIZE_DIVISOR == 32
    n = np.arange(200)
    np.testing.assert_array_equal(round_up(n), -(-n // 32) * 32)
    np.testing.assert_array_equal(round_up(tf.constant(n, tf.int32)).numpy(), -(-n // 32) * 32)
    np.testing.assert_array_equal(ceil_div(tf.constant(n, tf.int32), 8).numpy(), -(-n // 8))
