"""numpy's BLAS threads around the small matrix products of mask pasting.

numpy's OpenBLAS starts one thread per core for every matrix product, and its idle threads spin. The
products of :mod:`maskrcnn_body.ops.paste` are tiny (a 56 x 56 mask onto a box), so on a
2-core CPU shared with the model's own threads (TensorFlow, ONNX Runtime, TFLite) the spinning made
pasting 6 people take 60 ms instead of 2 ms and slowed the next model call by a third
(docs/BENCHMARKS.md, "cpu_small"). :func:`single_threaded_blas` runs a block with one BLAS thread
(same results: the products are not split along their inner dimension) and gives the old limit back.
Without ``threadpoolctl`` installed it does nothing.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

_controller = None
_failed = False


def _get_controller():
    global _controller, _failed
    if _controller is None and not _failed:
        try:
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController()
        except Exception:
            _failed = True
    return _controller


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    controller = _get_controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield
