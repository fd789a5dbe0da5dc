"""SavedModel, TFLite and ONNX export (the implementation lives in
:mod:`maskrcnn_body.inference.exporting`, so that the inference backends can export a training
directory on the fly without importing the serving layer; read its docstring for the signature,
the quantised TFLite variants and the ONNX route).
"""

from __future__ import annotations

from maskrcnn_body.inference.exporting import (  # noqa: F401  (this module's public API)
    BATCH_SIGNATURE,
    ONNX_OPSET,
    SIGNATURE,
    TFLITE_QUANT,
    ExportModule,
    calibration_images,
    export_onnx,
    export_saved_model,
    export_tflite,
    frozen_serving_module,
)
