"""int8 ONNX quantisation (maskrcnn_body/inference/quantize.py) and the accuracy check of quantised exports
(maskrcnn_body/workflows/export.py): per-channel weights keep a small filter that one scale per tensor destroys,
only the chosen node types are quantised, the input/output interface is unchanged, and a quantised export that
loses more than 1 AP is reported so."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from maskrcnn_body.errors import InvalidArgument, UserError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from maskrcnn_body.inference.quantize import quant_path, quantize_onnx  # noqa: E402


def _image_conv_model(path: str, weights: np.ndarray) -> str:
    """``image`` uint8 (H, W, 3) -> float NCHW -> 3x3 Conv (``weights`` (C, 3, 3, 3)) -> ``out`` (1, C, H, W)
    -> Relu -> ``total`` (1,): the export interface (one RGB uint8 image of any size) around convolutions."""
    c = weights.shape[0]
    nodes = [
        helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["f"], ["chw"], perm=[2, 0, 1]),
        helper.make_node("Unsqueeze", ["chw", "axis0"], ["nchw"]),
        helper.make_node("Conv", ["nchw", "w", "b"], ["out"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["out"], ["r"]),
        helper.make_node("ReduceSum", ["r"], ["total"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, [None, None, 3])],
        [
            helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, c, None, None]),
            helper.make_tensor_value_info("total", TensorProto.FLOAT, []),
        ],
        [
            numpy_helper.from_array(weights.astype(np.float32), "w"),
            numpy_helper.from_array(np.zeros(c, np.float32), "b"),
            numpy_helper.from_array(np.array([0], np.int64), "axis0"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _images(n, h=24, w=20, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), np.uint8) for _ in range(n)]


def _run(path, image):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return s.run(["out"], {"image": image})[0]


@pytest.fixture()
def two_range_model(tmp_path):
    """Two filters whose weights differ 10,000x in magnitude (as GroupNorm networks' filters do)."""
    rng = np.random.default_rng(1)
    w = rng.normal(size=(2, 3, 3, 3))
    w[0] *= 10.0
    w[1] *= 1e-3
    return _image_conv_model(str(tmp_path / "m.onnx"), w)


def _int8_weights(path: str) -> np.ndarray:
    """The Conv weights a QDQ model computes with: int8 values times their scale(s), (C, 3, 3, 3)."""
    model = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    (dq,) = [
        n
        for n in model.graph.node
        if n.op_type == "DequantizeLinear" and n.input[0] in inits and inits[n.input[0]].ndim == 4
    ]
    q, scale = inits[dq.input[0]].astype(np.float32), inits[dq.input[1]]
    return q * (scale.reshape(-1, 1, 1, 1) if scale.ndim else scale)


def test_per_channel_weights_keep_the_small_filter(two_range_model, tmp_path):
    calib = _images(8)
    want = numpy_helper.to_array(onnx.load(two_range_model).graph.initializer[0])
    per_channel = _int8_weights(quantize_onnx(two_range_model, str(tmp_path / "pc.onnx"), calib))
    per_tensor = _int8_weights(quantize_onnx(two_range_model, str(tmp_path / "pt.onnx"), calib, per_channel=False))

    def rel_err(w, ch):
        return np.abs(w[ch] - want[ch]).mean() / np.abs(want[ch]).mean()

    assert rel_err(per_channel, 0) < 0.02 and rel_err(per_channel, 1) < 0.02
    assert rel_err(per_tensor, 0) < 0.02 and rel_err(per_tensor, 1) > 0.9  # one scale rounds the small filter to 0


def test_the_quantised_model_runs_on_any_image_size_close_to_float(tmp_path, caplog):
    w = np.random.default_rng(2).normal(size=(4, 3, 3, 3))
    model = _image_conv_model(str(tmp_path / "m.onnx"), w)
    q = quantize_onnx(model, str(tmp_path / "q.onnx"), _images(8))
    assert not [r for r in caplog.records if "pre-processing" in r.getMessage()]  # ONNX Runtime's advice, dropped
    for h, w_ in [(24, 20), (31, 17), (64, 48)]:  # calibrated on 24x20 only
        test = _images(1, h, w_, seed=h)[0]
        want, got = _run(model, test), _run(q, test)
        assert got.shape == want.shape
        assert np.abs(got - want).mean() / np.abs(want).mean() < 0.03


def test_only_the_chosen_node_types_are_quantised_and_the_interface_is_kept(two_range_model, tmp_path):
    out = quantize_onnx(two_range_model, str(tmp_path / "q.onnx"), _images(4))
    model = onnx.load(out)
    ops = [n.op_type for n in model.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    # a node runs in int8 when its inputs are dequantised and its output is quantised (Q -> DQ -> op -> Q): the Conv
    # only; the Relu and the ReduceSum take the dequantised conv output and compute in float
    dq_out = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    q_in = {n.input[0] for n in model.graph.node if n.op_type == "QuantizeLinear"}
    int8_nodes = [
        n.op_type
        for n in model.graph.node
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear") and set(n.input) & dq_out and set(n.output) & q_in
    ]
    assert int8_nodes == ["Conv"]
    inits = {i.name: i for i in model.graph.initializer}
    weight_dq = [
        n
        for n in model.graph.node
        if n.op_type == "DequantizeLinear" and n.input[0] in inits and len(inits[n.input[0]].dims) == 4
    ]
    assert [list(inits[n.input[1]].dims) for n in weight_dq] == [[2]]  # one scale per filter
    assert [i.name for i in model.graph.input] == ["image"]
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.UINT8
    assert sorted(o.name for o in model.graph.output) == ["out", "total"]
    with pytest.raises(FileNotFoundError):  # written through a temporary and a rename: nothing else left
        open(str(tmp_path / "q.onnx.tmp"))
    assert sorted(os.listdir(tmp_path)) == ["m.onnx", "q.onnx"]


def test_bad_calibration_input_is_a_clear_error(two_range_model, tmp_path):
    with pytest.raises(InvalidArgument, match="at least one calibration image"):
        quantize_onnx(two_range_model, str(tmp_path / "q.onnx"), [])
    with pytest.raises(InvalidArgument, match=r"RGB uint8 \(H, W, 3\)"):
        quantize_onnx(two_range_model, str(tmp_path / "q.onnx"), [np.zeros((4, 4), np.uint8)])
    with pytest.raises(UserError, match="no ONNX file"):
        quantize_onnx(str(tmp_path / "nope.onnx"), str(tmp_path / "q.onnx"), _images(1))
    assert not os.path.exists(tmp_path / "q.onnx")


def test_quant_path():
    assert quant_path("out/model.onnx", "int8") == "out/model.int8.onnx"
    assert quant_path("out/model", "int8") == "out/model.int8.onnx"


class _Result:
    def __init__(self, box, body, arm, kp):
        m = {"body": {"AP": body}, "left_arm": {"AP": arm}, "right_arm": {"AP": arm}}
        self.summary = {"box": {"AP": box}, "mask": m, "keypoints": {"AP": kp}}
        self.num_images = 7


@pytest.mark.parametrize(
    "quantised, lossy, named",
    [
        ((0.600, 0.700, 0.300, 0.650), False, ""),
        ((0.595, 0.700, 0.300, 0.638), True, "(keypoint OKS AP -1.2)"),  # box -0.5: within 1 AP, not named
        ((0.0, 0.0, 0.0, 0.0), True, "(box AP -60.0, body AP -70.0, left arm AP -30.0, right arm AP -30.0, "),
    ],
)
def test_a_quantised_export_losing_more_than_1_ap_is_reported(monkeypatch, tmp_path, quantised, lossy, named):
    from maskrcnn_body.workflows import evaluate as evaluate_module
    from maskrcnn_body.workflows.export import score_quantised

    results = iter([_Result(0.600, 0.700, 0.300, 0.650), _Result(*quantised)])
    monkeypatch.setattr(evaluate_module, "evaluate", lambda *a, **k: next(results))
    q = str(tmp_path / "m.int8.onnx")
    lines = []
    report = score_quantised(str(tmp_path / "m.onnx"), q, ["val-*"], log=lines.append)
    assert report["lossy"] is lossy
    saved = json.load(open(q + ".accuracy.json"))
    assert saved["lossy"] is lossy and [f["name"] for f in saved["figures"]] == [
        "box AP",
        "body AP",
        "left arm AP",
        "right arm AP",
        "keypoint OKS AP",
    ]
    assert saved["images"] == 7 and saved["records"] == ["val-*"]
    warned = [line for line in lines if line.startswith("warning:")]
    if lossy:
        assert len(warned) == 1 and "loses more than 1 AP" in warned[0] and named in warned[0]
    else:
        assert not warned
        assert saved["figures"][4]["change"] == pytest.approx(0.0)
        assert any(line.startswith("  box AP") and line.endswith("60.0 ->   60.0  (+0.0)") for line in lines), lines


def test_export_refuses_onnx_int8_without_what_it_needs(tmp_path):
    from maskrcnn_body.workflows.export import export

    with pytest.raises(UserError, match="needs --calib_records"):
        export(str(tmp_path / "run"), onnx=str(tmp_path / "m.onnx"), onnx_quant=["int8"])
    with pytest.raises(UserError, match="give --onnx FILE too"):
        export(str(tmp_path / "run"), onnx_quant=["int8"], calib_records=["x-*"])
    with pytest.raises(UserError, match="onnx_quant.*choose from none, int8"):
        export(str(tmp_path / "run"), onnx=str(tmp_path / "m.onnx"), onnx_quant=["int4"])
    with pytest.raises(UserError, match="no files match --score_records"):
        export(str(tmp_path / "run"), score_records=[str(tmp_path / "none-*")])
