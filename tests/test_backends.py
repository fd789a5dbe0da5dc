"""ONNX export, quantised TFLite and the backend choice (tensorflow / onnxruntime / openvino / tflite).

Tolerances, on a random-weight cpu_small model (128 px; scores of random weights are near-tied, so rows
are matched by box where the order may differ):

* ONNX Runtime vs the SavedModel (both float32): boxes and keypoint x/y 1e-2 px, scores 1e-4, masks and
  keypoint scores 1e-4, the same number of detections, row for row. Measured: ~5e-4 px, ~3e-6, ~4e-5.
* quantised TFLite vs the float32 TFLite: float16 boxes within 1 px, mask probabilities within 0.02
  (mean within 2e-3), >= 90% of the joints within 1 px (a joint is a heatmap arg-max: random weights give
  near-tied cells that rounding may flip); dynamic-range and full int8 only have to run and return well-formed
  detections
  on the same images (random weights give activations no calibration fits; their accuracy on a trained
  model is the per-part AP table in docs/BENCHMARKS.md).
* an image with no person (blank, score threshold 0.9999): zero detections from every backend.
"""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import maskrcnn_body as mb
from helpers.exports import run_onnx, run_saved_model, run_tflite
from helpers.masks import assert_masks_close, decode_probabilities
from helpers.models import write_random_train_dir
from maskrcnn_body.inference import backends, exporting

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = {
    "input.min_size": 128,
    "input.max_size": 128,
    "model.postprocess.score_threshold": 0.0,
    "model.postprocess.max_detections": 5,
}
DECODING = {  # non-default mask decoding (issue 26): every export must carry it
    "model.postprocess.mask_thresholds": (0.45, 0.55, 0.5, 0.3, 0.35, 0.4, 0.42),
    "model.postprocess.mask_body_union": True,
}
SIZES = [(100, 150), (90, 60), (256, 256), (33, 400)]  # landscape, portrait, square, a thin strip
KEYS = ("boxes", "scores", "masks", "keypoints")

onnx = pytest.importorskip("onnxruntime", reason="the [onnx] extra (onnxruntime, tf2onnx) is not installed")


def _image(h, w):
    return np.random.default_rng(h * w).integers(0, 255, (h, w, 3), np.uint8)


def _cli(*args: str) -> str:
    """Runs ``python ARGS...`` in the repository root, asserts it succeeded and returns its stdout."""
    r = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(train_dir, saved_model, onnx, {quant: tflite}, blank-model SavedModel, blank-model onnx), by the CLI."""
    pytest.importorskip("tf2onnx")
    d = tmp_path_factory.mktemp("backends")
    train_dir = str(d / "run")
    write_random_train_dir(train_dir, "cpu_small", seed=0, **SMALL, **DECODING)
    calib = d / "calib" / "synthetic"
    synth = ["-m", "maskrcnn_body.cli.main", "synth", "--out", str(calib), "--num_train", "0", "--num_val", "4"]
    _cli(*synth, "--size", "96", "--num_shards", "1", "--num_workers", "1", "--noprogress")
    sm, onnx_path, tfl = str(d / "saved_model"), str(d / "model.onnx"), str(d / "model.tflite")
    export = ["train/export.py", "--train_dir", train_dir]
    val = str(calib) + "_val-*.tfrecord"
    quant_flags = ["--tflite_quant", "none,float16,dynamic,int8", "--onnx_quant", "int8", "--calib_records", val]
    score_flags = ["--score_records", val, "--score_images", "2"]
    log = _cli(
        *export,
        "--saved_model",
        sm,
        "--onnx",
        onnx_path,
        "--tflite",
        tfl,
        *quant_flags,
        "--calib_images",
        "4",
        *score_flags,
    )
    quant = {"none": tfl, **{q: str(d / f"model.{q}.tflite") for q in ("float16", "dynamic", "int8")}}
    (d / "export.log").write_text(log)  # read by the int8 ONNX test
    for path in [onnx_path, str(d / "model.int8.onnx"), *quant.values()]:
        assert os.path.getsize(path) > 100_000, path
    blank_sm, blank_onnx = str(d / "blank_sm"), str(d / "blank.onnx")
    _cli(*export, "--saved_model", blank_sm, "--onnx", blank_onnx, "--score_threshold", "0.9999")
    return train_dir, sm, onnx_path, quant, blank_sm, blank_onnx


def _match(out, ref, box_tol, score_tol, mask_tol, kp_tol, same_order=True, kp_share=1.0, mask_swapped=1e-3):
    n = int(np.asarray(out["num_detections"]))
    assert n == int(np.asarray(ref["num_detections"])) > 0
    assert not np.any(out["scores"][n:]) and not np.any(out["masks"][n:])  # padding rows are zero
    ref = backends.trim(ref)
    if same_order:
        order = np.arange(n)
    else:
        order = np.abs(out["boxes"][:n, None] - ref["boxes"][None]).max(-1).argmin(1)
        assert sorted(order) == list(range(n))
    np.testing.assert_allclose(out["boxes"][:n], ref["boxes"][order], atol=box_tol)
    np.testing.assert_allclose(out["scores"][:n], ref["scores"][order], atol=score_tol)
    # point head: top-k ties
    assert_masks_close(out["masks"][:n], ref["masks"][order], atol=mask_tol, swapped=mask_swapped)
    if kp_share >= 1.0:
        np.testing.assert_allclose(out["keypoints"][:n, :, :2], ref["keypoints"][order, :, :2], atol=kp_tol)
        np.testing.assert_allclose(out["keypoints"][:n, :, 2], ref["keypoints"][order, :, 2], atol=mask_tol)
    else:  # a joint is a heatmap arg-max: near-tied cells (random weights) may flip under rounding
        close = np.abs(out["keypoints"][:n, :, :2] - ref["keypoints"][order, :, :2]).max(-1) <= kp_tol
        assert close.mean() >= kp_share, close.mean()


@pytest.mark.slow
def test_onnx_runtime_matches_the_saved_model_on_any_size(exported):
    _, sm, onnx_path, *_ = exported
    session = backends.onnxruntime_session(onnx_path, 2)
    inputs, outputs = session.get_inputs(), session.get_outputs()
    assert [(i.name, i.type, len(i.shape)) for i in inputs] == [("image", "tensor(uint8)", 3)]
    assert sorted(o.name for o in outputs) == ["boxes", "keypoints", "masks", "num_detections", "scores"]
    for hw in SIZES:
        want = run_saved_model(sm, _image(*hw))
        got = run_onnx(onnx_path, _image(*hw), session=session)
        assert {k: got[k].dtype for k in got} == {k: want[k].dtype for k in want}
        # the mask-aware GroupNorm's masked moments round differently in ONNX Runtime: ~0.15% of the mask
        # values differ by more than 1e-4 (at most 4e-3) on a random-weight model
        _match(got, want, 1e-2, 1e-4, 1e-4, 1e-2, mask_swapped=5e-3)


@pytest.mark.slow
def test_int8_onnx_is_written_scored_beside_float32_and_runs_on_any_size(exported):
    """``export --onnx_quant int8 --score_records``: the int8 file (convolutions int8, the rest float) runs through
    ``mb.load`` like the float file, and every quantised file (ONNX int8, the three TFLite variants) is scored
    beside its float32 file: the table is logged and written to FILE.accuracy.json."""
    import json

    import maskrcnn_body as mb

    _, _, onnx_path, quant, *_ = exported
    folder = os.path.dirname(onnx_path)
    int8 = os.path.join(folder, "model.int8.onnx")
    log = open(os.path.join(folder, "export.log")).read()
    for path in (int8, quant["float16"], quant["dynamic"], quant["int8"]):
        report = json.load(open(path + ".accuracy.json"))
        assert report["images"] == 2 and report["quantised"] == path
        assert [f["name"] for f in report["figures"]] == [
            "box AP",
            "body AP",
            "left arm AP",
            "right arm AP",
            "keypoint OKS AP",
        ]
        assert f"accuracy of {path} beside float32 on 2 images" in log
    assert "is unmeasured" not in log
    ops = {n.op_type for n in __import__("onnx").load(int8).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops and not any(o.startswith("QLinear") for o in ops)
    assert mb.load(int8).backend == "onnxruntime"
    session, reference = backends.onnxruntime_session(int8, 2), backends.onnxruntime_session(onnx_path, 2)
    for hw in SIZES:
        got, want = run_onnx(int8, _image(*hw), session=session), run_onnx(onnx_path, _image(*hw), session=reference)
        assert sorted(got) == sorted(want)
        assert all(got[k].shape == want[k].shape and got[k].dtype == want[k].dtype for k in want)


@pytest.mark.slow
def test_decoding_thresholds_are_carried_by_every_backend(exported, tmp_path):
    """The training directory's mask decoding (model.postprocess.mask_thresholds, mask_body_union) is
    applied by the TensorFlow backend and baked into the SavedModel, ONNX and TFLite exports: their masks
    equal the numpy decoding of the same weights' plain sigmoid probabilities."""
    train_dir, sm, onnx_path, quant, *_ = exported
    raw_dir = str(tmp_path / "raw")
    write_random_train_dir(raw_dir, "cpu_small", seed=0, **SMALL)  # same weights, decoding = sigmoid
    img = _image(100, 150)
    (raw,) = backends.tensorflow_runner(raw_dir)([img])
    want = decode_probabilities(raw["masks"], DECODING["model.postprocess.mask_thresholds"], True)
    assert np.abs(want - raw["masks"]).max() > 0.05  # the decoding changes the masks
    (tf_out,) = backends.tensorflow_runner(train_dir)([img])
    outs = {
        "tensorflow": tf_out,
        "savedmodel": backends.trim(run_saved_model(sm, img)),
        "onnx": backends.trim(run_onnx(onnx_path, img)),
        "tflite": backends.trim(run_tflite(quant["none"], img)),
    }
    for name, got in outs.items():
        np.testing.assert_allclose(got["boxes"], raw["boxes"], atol=2e-2, err_msg=name)
        # 5e-3: the exports round the mask-aware GroupNorm's masked moments differently (up to 3.6e-3 seen);
        # the decoding itself moves the masks by > 0.05 (asserted above)
        np.testing.assert_allclose(got["masks"], want, atol=5e-3, err_msg=name)


@pytest.mark.slow
def test_an_image_with_no_person_gives_no_detection_on_every_backend(exported):
    *_, blank_sm, blank_onnx = exported
    blank = np.zeros((120, 90, 3), np.uint8)
    for out in (run_saved_model(blank_sm, blank), run_onnx(blank_onnx, blank)):
        assert int(out["num_detections"]) == 0
        assert not out["boxes"].any() and not out["masks"].any() and not out["keypoints"].any()
    for backend in ("tensorflow", "onnxruntime"):
        for path in (blank_sm, blank_onnx):
            if backends.model_format(path) == "onnx" and backend == "tensorflow":
                continue
            r = mb.load(path, backend=backend, score_threshold=0.0)(blank)[0]
            assert r.persons == [] and r.to_json()["persons"] == [] and not r.part_map.any()


@pytest.mark.slow
def test_quantised_tflite_files_run_and_float16_stays_close(exported):
    quant = exported[3]
    run = {q: backends.load_tflite(p) for q, p in quant.items()}
    sizes = {q: os.path.getsize(p) for q, p in quant.items()}
    assert sizes["float16"] < 0.6 * sizes["none"] and sizes["dynamic"] < 0.4 * sizes["none"]
    assert sizes["int8"] < 0.4 * sizes["none"]
    for hw in SIZES[:2]:
        ref = run_tflite(quant["none"], _image(*hw), runner=run["none"])
        f16 = run_tflite(quant["float16"], _image(*hw), runner=run["float16"])
        _match(f16, ref, 1.0, 0.02, 0.02, 1.0, same_order=False, kp_share=0.9)
        assert np.abs(f16["masks"] - ref["masks"]).mean() < 2e-3
        for q in ("dynamic", "int8"):
            out = run_tflite(quant[q], _image(*hw), runner=run[q])
            n = int(out["num_detections"])
            assert 0 < n <= 5 and out["masks"].shape[1:] == ref["masks"].shape[1:]
            assert np.all(np.isfinite(out["boxes"])) and np.all((out["masks"] >= 0) & (out["masks"] <= 1))
            h, w = hw
            assert np.all(out["boxes"][:n, [0, 2]] <= w + 1e-3) and np.all(out["boxes"][:n, [1, 3]] <= h + 1e-3)


@pytest.mark.slow
def test_litert_and_tf_lite_give_the_same_detections(exported):
    """The same .tflite files (float32 and float16) on LiteRT (the default) and on tf.lite (the fallback)."""
    pytest.importorskip("ai_edge_litert", reason="the [runtime-tflite] extra (ai-edge-litert) is not installed")
    quant = exported[3]
    for q in ("none", "float16"):
        litert = backends.load_tflite(quant[q], runtime="litert")
        tf_lite = backends.load_tflite(quant[q], runtime="tensorflow")
        for hw in SIZES[:2]:
            got = run_tflite(quant[q], _image(*hw), runner=litert)
            want = run_tflite(quant[q], _image(*hw), runner=tf_lite)
            _match(got, want, 1e-2, 1e-4, 1e-4, 1e-2)


@pytest.mark.slow
def test_backend_argument_selects_the_engine_and_results_agree(exported, tmp_path, monkeypatch):
    train_dir, sm, onnx_path, quant, *_ = exported
    monkeypatch.setenv("MASKRCNN_BODY_CACHE", str(tmp_path / "cache"))
    img = _image(100, 150)
    want = mb.load(train_dir, backend="tensorflow", score_threshold=0.0)(img)[0]
    cases = [
        (sm, "tensorflow"),
        (onnx_path, "onnxruntime"),
        (onnx_path, "onnx"),
        (quant["none"], "tflite"),
        (train_dir, "onnxruntime"),
    ]  # a training directory exported on the fly (cached)
    if backends.is_available("openvino"):
        cases.append((onnx_path, "openvino"))
    for path, backend in cases:
        model = mb.load(path, backend=backend, score_threshold=0.0)
        assert model.backend == backends.canonical(backend) and model.format == backends.model_format(path)
        got = model(img)[0]
        assert type(got) is type(want) and len(got.persons) == len(want.persons), (path, backend)
        a, b = got.detections, want.detections
        order = np.abs(a["boxes"][:, None] - b["boxes"][None]).max(-1).argmin(1)
        np.testing.assert_allclose(a["boxes"], b["boxes"][order], atol=2e-2, err_msg=f"{path} {backend}")
        assert_masks_close(a["masks"], b["masks"][order], atol=1e-3)
    cached = backends.cache_path(train_dir, "train_dir", "onnxruntime")
    assert os.path.exists(cached) and cached.startswith(str(tmp_path / "cache"))
    # auto: ONNX Runtime for .onnx, TFLite for .tflite, TensorFlow for a SavedModel; a small-input training
    # directory with a cached TFLite export -> tflite, without one -> tensorflow (auto never converts)
    assert mb.load(onnx_path).backend == "onnxruntime" and mb.load(quant["none"]).backend == "tflite"
    assert backends.choose_backend(train_dir) == ("train_dir", "tensorflow")
    mb.load(train_dir, backend="tflite", score_threshold=0.0)
    assert backends.choose_backend(train_dir) == ("train_dir", "tflite")
    monkeypatch.setenv("MASKRCNN_BODY_CACHE", str(tmp_path / "empty_cache"))
    assert backends.choose_backend(train_dir) == ("train_dir", "tensorflow")
    assert backends.choose_backend(sm) == ("savedmodel", "tensorflow")


@pytest.mark.slow
def test_batches_through_the_saved_model_signature_equal_one_at_a_time(exported):
    sm = exported[1]
    images = [_image(100, 150), np.ascontiguousarray(_image(100, 150)[::-1]), _image(90, 60)]
    runner = backends.saved_model_runner(sm)
    batched = runner(images)
    for im, got in zip(images, batched):
        want = backends.trim(run_saved_model(sm, im))
        for k in KEYS:
            np.testing.assert_allclose(got[k], want[k], atol=1e-3, err_msg=k)


def test_unknown_and_impossible_backends_are_clear_errors(tmp_path):
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"x")
    tfl = tmp_path / "m.tflite"
    tfl.write_bytes(b"x")
    with pytest.raises(
        backends.BackendError,
        match=r"unknown backend 'torch': choose auto or one of tensorflow, "
        r"onnxruntime, openvino, tflite \(installed here: tensorflow",
    ):
        mb.load(str(onnx_file), backend="torch")
    with pytest.raises(backends.BackendError, match="backend 'tflite' cannot run .* it runs on onnxruntime, openvino"):
        mb.load(str(onnx_file), backend="tflite")
    with pytest.raises(backends.BackendError, match="cannot run .*tflite.* it runs on tflite"):
        mb.load(str(tfl), backend="tensorflow")
    with pytest.raises(backends.BackendError, match="precision bfloat16 runs on tensorflow with a training directory"):
        mb.load(str(tfl), backend="tflite", precision="bfloat16")
    assert backends.canonical("ORT") == "onnxruntime" and backends.canonical("tf") == "tensorflow"
    assert backends.canonical("auto") == "auto"


def test_cli_backend_flag_reports_unknown_backends(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"x")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "maskrcnn_body.cli.main",
            "predict",
            "--model",
            str(tmp_path / "m.onnx"),
            "--backend",
            "nope",
            "--input",
            str(tmp_path / "m.onnx"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2 and "unknown backend 'nope'" in r.stderr and "onnxruntime" in r.stderr, r.stderr[-2000:]


@pytest.mark.parametrize(
    "quant, message", [("int8", "--calib_records"), ("int4", "choose from none, float16, dynamic, int8")]
)
def test_export_cli_rejects_unusable_quantisation(tmp_path, quant, message):
    """int8 without calibration records, or an unknown variant: exit code 2 and a message that says what to do."""
    (tmp_path / "config.json").write_text("{}")
    r = subprocess.run(
        [sys.executable, "train/export.py", "--train_dir", str(tmp_path), "--tflite", str(tmp_path / "m.tflite")]
        + ["--tflite_quant", quant],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and message in r.stderr, r.stderr[-2000:]


def test_tflite_paths_name_each_variant():
    from maskrcnn_body.workflows.export import tflite_paths

    assert tflite_paths("a/m.tflite", ["int8"]) == {"int8": "a/m.tflite"}
    assert tflite_paths("a/m.tflite", ["none", "float16"]) == {"none": "a/m.tflite", "float16": "a/m.float16.tflite"}
    assert exporting.TFLITE_QUANT == ("float16", "dynamic", "int8")


# --------------------------------------------------------------------------- devices and runtimes (issue 29)
@pytest.fixture(scope="module")
def standin_onnx(tmp_path_factory):
    """A stand-in .onnx with the exports' interface (helpers.exports): loads in a second."""
    pytest.importorskip("onnx")
    from helpers.exports import write_standin_onnx

    return write_standin_onnx(str(tmp_path_factory.mktemp("standin") / "m.onnx"))


def test_onnxruntime_sessions_plan_no_memory_pattern(standin_onnx):
    """Issue 30 measured ONNX Runtime at 3.5x TensorFlow's peak memory: with the exports' dynamic shapes its memory
    pattern kept per-shape buffers (r50_fpn at 512 px, Intel Xeon: peak 3.7 GB with it, 2.1 GB without, identical
    outputs). Every session this package opens has it off."""
    sess = backends.onnxruntime_session(standin_onnx, 1, "cpu")
    assert sess.get_session_options().enable_mem_pattern is False


def test_device_strings_parse_and_unknown_ones_list_the_kinds():
    assert backends.parse_device(None) == (None, None) and backends.parse_device("") == (None, None)
    assert backends.parse_device("CUDA:1") == ("cuda", 1) and backends.parse_device("GPU.1") == ("gpu", 1)
    assert backends.parse_device("tensorrt") == ("tensorrt", None) and backends.parse_device("npu") == ("npu", None)
    assert backends.device_kind("onnxruntime", "gpu") == "cuda" and backends.device_kind("openvino", "gpu") == "gpu"
    assert backends.device_kind("tflite", None) is None
    kinds = "cpu, cuda, gpu, npu, tensorrt"
    with pytest.raises(backends.BackendError, match=rf"unknown device 'tpu': choose one of {kinds} \(with :N"):
        backends.parse_device("tpu")
    with pytest.raises(backends.BackendError, match=r"unknown device 'cuda:x'"):
        backends.parse_device("cuda:x")
    with pytest.raises(backends.BackendError, match=r"backend 'tflite' cannot run on device 'cuda': it runs on cpu; "):
        backends.device_kind("tflite", "cuda")
    with pytest.raises(backends.BackendError, match=r"'onnxruntime' cannot run on device 'npu'.*npu runs on openvino"):
        backends.device_kind("onnxruntime", "npu")


def test_onnxruntime_runs_on_the_cpu_and_an_absent_gpu_says_what_to_install(standin_onnx, monkeypatch):
    import onnxruntime as ort

    for device in (None, "cpu"):
        model = mb.load(standin_onnx, device=device)
        assert model.backend == "onnxruntime" and len(model(np.zeros((96, 128, 3), np.uint8))[0].persons) == 2
    assert backends.onnxruntime_session(standin_onnx, 1, "cpu").get_providers() == ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider: the absent-device message cannot be checked here")
    with pytest.raises(backends.BackendError) as e:
        mb.load(standin_onnx, device="cuda")
    assert str(e.value) == (
        f"device 'cuda' needs ONNX Runtime's CUDAExecutionProvider, which this onnxruntime {ort.__version__} does "
        f"not have (it has {', '.join(ort.get_available_providers())}): install the GPU build instead (pip "
        "uninstall -y onnxruntime && pip install onnxruntime-gpu; NVIDIA driver, CUDA 12 and cuDNN 9), or use "
        "device='cpu'"
    )
    with pytest.raises(backends.BackendError, match="TensorrtExecutionProvider and CUDAExecutionProvider.*TensorRT 10"):
        mb.load(standin_onnx, device="tensorrt:0")
    # a provider onnxruntime lists but cannot start (no CUDA libraries): ONNX Runtime falls back to the CPU
    # silently, which is an error here, not a CPU run under a GPU label
    have = ort.get_available_providers()
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", *have])
    assert backends.onnxruntime_providers("cuda:1") == [
        ("CUDAExecutionProvider", {"device_id": 1}),
        "CPUExecutionProvider",
    ]
    with warnings.catch_warnings():  # onnxruntime's own warning about the provider it lacks
        warnings.simplefilter("ignore")
        with pytest.raises(backends.BackendError, match=r"ONNX Runtime has CUDAExecutionProvider but could not start"):
            mb.load(standin_onnx, device="cuda:1")


def test_openvino_devices_map_to_its_names_and_an_absent_one_lists_what_it_sees():
    several = ["CPU", "GPU.0", "GPU.1", "NPU"]
    assert backends.openvino_device(None, ["CPU"]) == "CPU" and backends.openvino_device("cpu", several) == "CPU"
    assert backends.openvino_device("gpu", several) == "GPU" and backends.openvino_device("gpu:1", several) == "GPU.1"
    assert backends.openvino_device("GPU.0", ["CPU", "GPU"]) == "GPU"
    assert backends.openvino_device("npu", several) == "NPU"
    with pytest.raises(backends.BackendError, match=r"device 'npu': OpenVINO sees CPU here; an Intel NPU needs its"):
        backends.openvino_device("npu", ["CPU"])
    with pytest.raises(backends.BackendError, match=r"device 'gpu:2': OpenVINO sees CPU, GPU.0, GPU.1, NPU here"):
        backends.openvino_device("gpu:2", several)
    with pytest.raises(backends.BackendError, match=r"'openvino' cannot run on device 'tensorrt'"):
        backends.openvino_device("tensorrt", several)


def test_auto_skips_backends_that_cannot_use_the_device(standin_onnx, tmp_path, monkeypatch):
    tfl = tmp_path / "m.tflite"
    tfl.write_bytes(b"x")
    with pytest.raises(backends.BackendError, match=r"no backend runs .*m.tflite.* \(tflite\) on device 'cuda'"):
        backends.choose_backend(str(tfl), device="cuda")
    monkeypatch.setattr(backends, "is_available", lambda b: b != "openvino")
    with pytest.raises(
        backends.BackendError,
        match=r"no installed backend runs .* on device 'npu'; it runs on openvino: "
        r'pip install "maskrcnn_body\[runtime-openvino\]"',
    ):
        backends.choose_backend(standin_onnx, device="npu")
    assert backends.choose_backend(standin_onnx, device="cuda") == ("onnx", "onnxruntime")


def test_tensorflow_device_cpu_and_an_absent_gpu():
    tf = pytest.importorskip("tensorflow")
    assert backends.tensorflow_device(None) is None and backends.tensorflow_device("cpu") == "/CPU:0"
    n = len(tf.config.list_physical_devices("GPU"))
    with pytest.raises(backends.BackendError, match=rf"device 'cuda:{n}': TensorFlow sees {n} GPU\(s\) here"):
        backends.tensorflow_device(f"cuda:{n}")


@pytest.mark.slow
def test_a_training_directory_on_tensorflow_with_device_cpu_equals_the_default(tmp_path):
    tf = pytest.importorskip("tensorflow")
    n = len(tf.config.list_physical_devices("GPU"))
    write_random_train_dir(str(tmp_path), "cpu_small", **{**SMALL, "input.min_size": 64, "input.max_size": 64})
    with pytest.raises(backends.BackendError, match=rf"TensorFlow sees {n} GPU"):
        mb.load(str(tmp_path), backend="tensorflow", device=f"gpu:{n}")
    image = _image(48, 64)
    on_cpu = mb.load(str(tmp_path), device="cpu", score_threshold=0.0)(image)[0].detections
    default = mb.load(str(tmp_path), score_threshold=0.0)(image)[0].detections
    for k in KEYS:
        np.testing.assert_allclose(on_cpu[k], default[k], atol=1e-5, err_msg=k)


def test_tflite_runs_on_litert_when_installed_and_falls_back_to_tf_lite(tmp_path, monkeypatch):
    """LiteRT (ai-edge-litert) is the default interpreter; tf.lite (deprecated, warns) only without it; both
    give the same outputs. Neither installed: the error names the extra."""
    pytest.importorskip("ai_edge_litert", reason="the [runtime-tflite] extra (ai-edge-litert) is not installed")
    pytest.importorskip("tensorflow")
    from helpers.exports import write_standin_tflite

    path = write_standin_tflite(str(tmp_path / "m.tflite"))
    image = np.zeros((96, 128, 3), np.uint8)
    assert backends.tflite_runtime() == "litert" and backends.TFLITE_RUNTIMES["litert"] == "ai_edge_litert.interpreter"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # LiteRT does not warn on use (tf.lite.Interpreter does)
        litert = run_tflite(path, image, runner=backends.load_tflite(path))
    with pytest.warns(UserWarning, match="tf.lite.Interpreter is deprecated"):
        tf_lite = run_tflite(path, image, runner=backends.load_tflite(path, runtime="tensorflow"))
    assert sorted(litert) == sorted(tf_lite) == ["boxes", "keypoints", "masks", "num_detections", "scores"]
    for k in litert:
        np.testing.assert_array_equal(litert[k], tf_lite[k], err_msg=k)
    installed = backends._installed
    monkeypatch.setattr(backends, "_installed", lambda m: not m.startswith("ai_edge_litert") and installed(m))
    assert backends.tflite_runtime() == "tensorflow"
    with pytest.warns(UserWarning, match="deprecated"):
        assert len(mb.load(path, score_threshold=0.5)(image)[0].persons) == 2
    monkeypatch.setattr(backends, "_installed", lambda m: False)
    with pytest.raises(backends.BackendError, match=r'no TFLite interpreter.*: pip install "maskrcnn_body\[runtime-tf'):
        backends.tflite_runtime()
    with pytest.raises(backends.BackendError, match=r"backend 'tflite' is not installed: .*\[runtime-tflite\]"):
        mb.load(path, backend="tflite")


def test_cli_device_flag_reports_an_absent_device(standin_onnx, tmp_path):
    """--device on predict (and serve, evaluate: the same add_device_argument) reaches the backend; an absent or
    unusable device is exit code 2 with the message, no traceback."""
    for device, message in (("npu", "cannot run on device 'npu'"), ("tpu", "unknown device 'tpu'")):
        r = subprocess.run(
            [sys.executable, "-m", "maskrcnn_body.cli.main", "predict", "--model", standin_onnx, "--backend", "onnx"]
            + ["--device", device, "--input", standin_onnx],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
    from maskrcnn_body.cli.main import build_parser

    parser = build_parser()
    for command in ("predict", "serve", "evaluate"):
        args = parser.parse_args([command, "--device", "cuda:1"])
        assert args.device == "cuda:1", command
