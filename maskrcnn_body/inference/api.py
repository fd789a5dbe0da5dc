"""The Python API: ``mb.load(path)`` -> :class:`Model`; ``model(inputs)`` -> a list of :class:`Result`.

    import maskrcnn_body as mb
    model = mb.load("output/mask_rcnn")        # a train dir, a SavedModel dir, a .onnx or a .tflite file
    model = mb.load("output/mask_rcnn", backend="onnxruntime")   # or tensorflow, openvino, tflite, auto
    model = mb.load("model.onnx", device="cuda")   # cpu (default), cuda[:N], tensorrt[:N], gpu[:N], npu
    results = model("photo.jpg")               # a path, image bytes, a PIL image, an RGB uint8 array, or a list
    r = results[0]
    r.persons[0].box, r.persons[0].score       # x1, y1, x2, y2 in the input image's pixels; float
    r.persons[0].keypoints                     # (15, 3): x, y, score, same frame
    r.persons[0].masks["left_arm"]             # (H, W) bool in the input image, parts clipped to the body
    r.part_map                                 # (H, W) uint8: 0 background, 1..6 head..right leg
    r.plot()                                   # RGB uint8 drawing, the input's size; plot(kpt_thr=0.3, legend=True)
    r.save("out.png"); r.to_json()             # to_json(): the JSON that train/infer.py writes

Whatever :func:`load` was given, the same :class:`Result` comes back: every backend returns the
detections in the input image's pixels (boxes (R, 4), scores (R,), box-frame masks (R, M, M, 7),
keypoints (R, 15, 3)) and this module does the rest (pasting, label map, drawing, JSON) once.
Coordinates: the pixel-edge frame of ``constants`` (x2/y2 exclusive).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import sys
from functools import cached_property
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Union

import numpy as np

from maskrcnn_body import constants
from maskrcnn_body.data import images, inputs, video
from maskrcnn_body.errors import UserError
from maskrcnn_body.inference import result_json
from maskrcnn_body.inference.backends import Runner
from maskrcnn_body.ops import paste

ImageInput = Union[str, os.PathLike, np.ndarray, Any]  # Any: a PIL image
IMAGE_EXTS = images.IMAGE_EXTS  # the formats the decoder accepts (JPEG, PNG, WebP, BMP)
PART_MAP_LABELS = {0: "background", **{k: constants.CHANNELS[k] for k in constants.PART_CHANNELS}}
"""Values of :attr:`Result.part_map`: 0 background (and body pixels no part covers), 1 head,
2 torso, 3 left arm, 4 right arm, 5 left leg, 6 right leg (the part channel indices)."""


class InputImageError(UserError, ValueError):
    """An input of :meth:`Model.__call__` is not an image (the message names it and what is accepted)."""


# --------------------------------------------------------------------------- results
@dataclasses.dataclass
class Person:
    """One detected person, in the input image's pixels.

    Attributes:
      box: float32 (4,) x1, y1, x2, y2 (x2/y2 exclusive).
      score: detection score in [0, 1].
      keypoints: float32 (15, 3) x, y, score in ``constants.KEYPOINTS`` order.
      mask_probs: float32 (M, M, 7) box-frame channel probabilities (what the model outputs).
      track_id: identity across video frames (``maskrcnn_body.inference.tracking``), else None.
    """

    box: np.ndarray
    score: float
    keypoints: np.ndarray
    mask_probs: np.ndarray
    image_size: tuple
    track_id: Optional[int] = None

    @cached_property
    def masks(self) -> Dict[str, np.ndarray]:
        """``{channel name: (H, W) bool}`` in the input image (``constants.CHANNELS``): the pasting
        rule of every metric and drawing (bilinear onto the box, >= 0.5, parts clipped to the body)."""
        h, w = self.image_size
        (crop,) = paste.paste_crops(self.mask_probs[None], self.box[None], h, w)
        full = crop.full(h, w)
        return {name: full[..., k] for k, name in enumerate(constants.CHANNELS)}

    @property
    def parts_found(self) -> List[str]:
        """Names of the part channels (head .. right_leg) with at least one pixel."""
        return [constants.CHANNELS[k] for k in constants.PART_CHANNELS if self.masks[constants.CHANNELS[k]].any()]


@dataclasses.dataclass
class Result:
    """The people found in one image.

    Attributes:
      image: the input image, RGB uint8 (H, W, 3).
      persons: detections with score >= the model's threshold, best first.
      source: where the image came from (a path, or "" for arrays).
    """

    image: np.ndarray
    persons: List[Person]
    source: str = ""

    @property
    def detections(self) -> Dict[str, np.ndarray]:
        """The persons as arrays: ``boxes`` (R, 4), ``scores`` (R,), ``masks`` (R, M, M, 7) box-frame
        probabilities, ``keypoints`` (R, 15, 3) (the evaluation-dump keys)."""
        p = self.persons
        m = p[0].mask_probs.shape[0] if p else 1
        return {
            "boxes": np.asarray([x.box for x in p], np.float32).reshape(-1, 4),
            "scores": np.asarray([x.score for x in p], np.float32).reshape(-1),
            "masks": np.asarray([x.mask_probs for x in p], np.float32).reshape(-1, m, m, constants.NUM_CHANNELS),
            "keypoints": np.asarray([x.keypoints for x in p], np.float32).reshape(-1, constants.NUM_KEYPOINTS, 3),
        }

    @cached_property
    def part_map(self) -> np.ndarray:
        """(H, W) uint8 label map of all persons: 0 background, 1..6 head, torso, left arm, right arm,
        left leg, right leg (:data:`PART_MAP_LABELS`). Where persons overlap the higher score wins;
        within a person the part priority of ``ops.paste.PART_PRIORITY`` decides; body pixels
        that no part covers are 0 here (they are in each person's ``masks["body"]``)."""
        h, w = self.image.shape[:2]
        d = self.detections
        crops = paste.paste_crops(d["masks"], d["boxes"], h, w) if len(d["boxes"]) else []
        labels = paste.crops_label_map(crops, d["scores"], h, w)
        labels[labels == paste.BODY_ONLY] = 0
        return labels.astype(np.uint8)

    def plot(
        self,
        parts: Union[bool, str, Sequence[str]] = True,
        boxes: bool = True,
        keypoints: bool = True,
        kpt_thr: Optional[float] = None,
        legend: bool = False,
        line_width: Optional[int] = None,
        alpha: Optional[float] = None,
    ) -> np.ndarray:
        """RGB uint8 (H, W, 3) drawing, the input's size: parts and body outlines, boxes labelled
        with the score (and ``#track_id`` in the track's colour for tracked video frames), skeletons
        (:func:`maskrcnn_body.drawing.people.render_detections`, the drawing of ``maskrcnn-body
        predict`` and the server's ``POST /v1/render``).

        Args:
          parts: True (all), False (none) or channel names (``"head"``, ``["left_arm", "right_arm"]``;
            ``"body"`` = the light body tint and the outline).
          boxes: boxes and their labels.  keypoints: skeletons and joints.
          kpt_thr: joints scoring below it are not drawn (default
            :data:`~maskrcnn_body.drawing.people.KEYPOINT_THRESHOLD`, 0.05).
          legend: append a strip naming the part colours (the drawing gets taller: (H + strip, W, 3)).
          line_width: pixels (default from the image size: 1 at 256 x 256, 2 at 640 x 480).
          alpha: opacity of the part colours in [0, 1] (default 0.6).
        """
        from maskrcnn_body.drawing import people

        pic = people.render_detections(
            self.image,
            self.detections,
            [p.track_id for p in self.persons],
            parts=parts,
            boxes=boxes,
            keypoints=keypoints,
            kpt_thr=people.KEYPOINT_THRESHOLD if kpt_thr is None else float(kpt_thr),
            legend=legend,
            line_width=line_width,
            alpha=people.PART_ALPHA if alpha is None else float(alpha),
        )
        return np.asarray(pic.convert("RGB"))

    def to_json(self) -> dict:
        """The JSON of ``train/infer.py`` / ``POST /v1/predict`` (``inference.result_json``), plus a
        ``track_id`` per person when the result comes from a tracked video."""
        h, w = self.image.shape[:2]
        out = result_json.detections_to_json(self.detections, h, w, self.source)
        for person, p in zip(out["persons"], self.persons):
            if p.track_id is not None:
                person["track_id"] = int(p.track_id)
        return out

    def save(self, path: Union[str, os.PathLike], **plot_options) -> str:
        """Writes the drawing (``.png``, ``.jpg``, ...; ``plot_options`` are :meth:`plot`'s) or, for
        ``.json``, :meth:`to_json`; returns the path."""
        path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        if path.lower().endswith(".json"):
            if plot_options:
                raise TypeError(f"plot options {sorted(plot_options)} apply to pictures, not to {path!r}")
            with open(path, "w") as f:
                json.dump(self.to_json(), f)
            return path
        from PIL import Image

        Image.fromarray(self.plot(**plot_options)).save(path)
        return path

    def __repr__(self) -> str:
        h, w = self.image.shape[:2]
        return f"Result({self.source or 'image'} {w}x{h}: {len(self.persons)} person(s))"


# --------------------------------------------------------------------------- inputs
def _decode(fp, name: str) -> np.ndarray:
    """The one decoder (:mod:`maskrcnn_body.data.images`: allow-listed formats, EXIF orientation, 16-bit grey)."""
    try:
        return images.decode_image(fp, name=name)
    except images.ImageDecodeError as e:
        raise InputImageError(str(e)) from None


def load_image(item: ImageInput) -> tuple:
    """``(RGB uint8 (H, W, 3), source name)`` of a path, encoded image bytes (JPEG, PNG, WebP, BMP; EXIF
    orientation applied: :mod:`maskrcnn_body.data.images`) or a binary file object, a PIL image or an array
    (gray and RGBA are converted; anything else is an :class:`InputImageError` saying what is accepted)."""
    if isinstance(item, (bytes, bytearray, memoryview)):
        import io

        return _decode(io.BytesIO(item), "the image bytes"), ""
    if hasattr(item, "read") and hasattr(item, "seek"):
        return _decode(item, f"{getattr(item, 'name', 'the file object')!r}"), str(getattr(item, "name", ""))
    if isinstance(item, (str, os.PathLike)):
        path = os.fspath(item)
        if not os.path.isfile(path):
            raise InputImageError(f"{path!r} is not an image file ({inputs.ACCEPTED})")
        return _decode(path, repr(path)), path
    if hasattr(item, "convert") and hasattr(item, "size"):  # PIL image
        return images.to_rgb(item), ""
    if isinstance(item, np.ndarray):
        a = item
        if a.dtype != np.uint8:
            raise InputImageError(
                f"array images must be uint8 RGB (H, W, 3), got dtype {a.dtype}; convert with "
                "np.clip(x, 0, 255).astype(np.uint8)"
            )
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, axis=-1)
        elif a.ndim == 3 and a.shape[-1] == 4:
            a = a[..., :3]
        if a.ndim != 3 or a.shape[-1] != 3 or min(a.shape[:2]) < 1:
            raise InputImageError(f"array images must be RGB uint8 (H, W, 3), got shape {item.shape}")
        return np.ascontiguousarray(a), ""
    raise InputImageError(f"cannot use {type(item).__name__} as an image: {inputs.ACCEPTED}")


def expand_inputs(items) -> List[ImageInput]:
    """A single input or a list; folders become their image files (sorted): :func:`maskrcnn_body.data.inputs.expand`."""
    try:
        return inputs.expand(items)
    except inputs.InputError as e:
        raise InputImageError(str(e)) from None


def video_stem(path: Union[str, os.PathLike]) -> str:
    """The name a video's frames are called by: its file name without the extension (``clip.mp4`` -> ``clip``)."""
    return os.path.splitext(os.path.basename(os.fspath(path)))[0]


def iter_images(items: Iterable, max_frames: int = 0, frame_step: int = 1, webcams: bool = False) -> Iterator[tuple]:
    """``(RGB uint8 (H, W, 3), source name)`` of each input, lazily: images through :func:`load_image`, a video
    path (:data:`~maskrcnn_body.data.video.VIDEO_EXTS`) or, with ``webcams``, a webcam index (int) as its frames
    (every ``frame_step``-th, at most ``max_frames``; named ``<stem>_<frame index>``)."""
    for item in items:
        if webcams and isinstance(item, int) and not isinstance(item, bool):
            yield from ((f, n) for n, f in video.iter_video(item, f"webcam{item}", max_frames, frame_step))
        elif video.is_video(item):
            if not os.path.isfile(item):
                raise InputImageError(f"video {os.fspath(item)!r} not found")
            yield from ((f, n) for n, f in video.iter_video(os.fspath(item), video_stem(item), max_frames, frame_step))
        else:
            yield load_image(item)


def count_images(items: Sequence) -> int:
    """How many images :func:`iter_images` yields for ``items`` (video frames counted from the file's header;
    0 when a count is unknown)."""
    n = 0
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            return 0
        if video.is_video(item):
            try:
                frames = video.video_info(os.fspath(item))[1]
            except video.VideoError:
                return 0
            if not frames:
                return 0
            n += frames
        else:
            n += 1
    return n


# --------------------------------------------------------------------------- the model
class Model:
    """A loaded model (any backend): call it on images, track people through a video, score it on records,
    export it. See the module docstring.

    Args:
      runner: the backend (:data:`Runner`).
      score_threshold: persons below this score are left out of the results (the model itself keeps
        everything above ``model.postprocess.score_threshold``).
      name: what was loaded (shown in ``repr``; the path).
      backend: the engine's name (``tensorflow``, ``onnxruntime``, ``openvino``, ``tflite``).
      format: what was loaded (``train_dir``, ``savedmodel``, ``onnx``, ``tflite``).
      reopen: ``reopen(min_score) -> Runner``: the same model with another in-model score threshold
        (:func:`load` sets it; :meth:`evaluate` needs every detection). None: the runner is used as it is.
      checkpoint: the checkpoint a training directory was loaded from (None: its newest).
    """

    def __init__(
        self,
        runner: Runner,
        score_threshold: float = 0.5,
        name: str = "",
        backend: str = "",
        format: str = "",
        reopen: Optional[Callable[[float], Runner]] = None,
        checkpoint: Optional[str] = None,
    ):
        self.runner, self.score_threshold, self.name, self.backend = runner, float(score_threshold), name, backend
        self.format, self._reopen, self.checkpoint = format, reopen, checkpoint
        self._lower: Dict[float, Model] = {}  # at_threshold's reopened models, built once each

    def __repr__(self) -> str:
        return (
            f"Model({self.name!r}, format={self.format!r}, backend={self.backend!r}, "
            f"score_threshold={self.score_threshold})"
        )

    # ----------------------------------------------------------------------- predict
    def __call__(
        self, inputs, batch_size: int = 8, score_threshold: Optional[float] = None, progress: Optional[bool] = None
    ) -> List[Result]:
        """Results for a path (image, folder of images, video), image bytes, a PIL image, an RGB uint8
        array, or a list of them; a video gives one result per frame (named ``<stem>_<frame index>``;
        :meth:`iter_results` streams them, :meth:`track` adds identities).

        Images run ``batch_size`` at a time (images of the same size share one model call); a
        progress bar is shown on stderr for more than ``batch_size`` images (``progress`` forces it
        on or off)."""
        return list(self.iter_results(inputs, batch_size, score_threshold, progress))

    def iter_results(
        self, inputs, batch_size: int = 8, score_threshold: Optional[float] = None, progress: Optional[bool] = None
    ) -> Iterator[Result]:
        """:meth:`__call__` as a generator (one image decoded at a time per batch: bounded memory)."""
        items = expand_inputs(inputs)
        if not items:
            raise InputImageError(f"no images in {inputs!r}")
        if batch_size < 1:
            raise InputImageError(f"batch_size must be >= 1, got {batch_size}")
        thr = self.score_threshold if score_threshold is None else float(score_threshold)
        total = count_images(items) if progress is not False else 0
        bar = None
        if total and (progress or (progress is None and total > batch_size)):
            from maskrcnn_body.utils.progress import ProgressBar

            bar = ProgressBar(total, stream=sys.stderr)
        done = persons = 0
        try:
            for result in self._results(iter_images(items), batch_size, thr):
                done, persons = done + 1, persons + len(result.persons)
                yield result
                if bar and (done % batch_size == 0 or done == total):
                    bar.update(done, {"persons": float(persons)})
        finally:
            if bar:
                bar.close()

    def _results(self, loaded: Iterable[tuple], batch_size: int, score_threshold: float) -> Iterator[Result]:
        """Results of ``(image, source)`` pairs, ``batch_size`` images per runner call."""
        chunk: List[tuple] = []
        for pair in itertools.chain(loaded, [None]):
            if pair is not None:
                chunk.append(pair)
            if chunk and (pair is None or len(chunk) == batch_size):
                for (image, source), det in zip(chunk, self.runner([im for im, _ in chunk])):
                    yield make_result(image, det, score_threshold, source)
                chunk = []

    # ----------------------------------------------------------------------- track
    def track(
        self,
        frames,
        batch_size: int = 8,
        score_threshold: Optional[float] = None,
        tracker=None,
        max_frames: int = 0,
        frame_step: int = 1,
    ) -> Iterator[Result]:
        """The :class:`Result` of each frame of a video, each person with its ``track_id``
        (:class:`~maskrcnn_body.inference.tracking.Tracker`; None until the track is confirmed).

        ``frames``: a video file path (``"clip.mp4"``; every ``frame_step``-th frame, at most ``max_frames``,
        named ``clip_<frame index>``), a webcam index (int), or an iterable of consecutive frames (RGB
        arrays, paths, PIL images), read lazily ``batch_size`` at a time. ``tracker``: a
        :class:`~maskrcnn_body.inference.tracking.TrackerConfig` (default: its defaults). The model runs down
        to ``min(score_threshold, tracker.low_score)`` for the tracker's second pass (a training directory
        loaded with a higher ``score_threshold`` is reopened at that threshold when it can be); the results
        keep the persons scoring at least ``score_threshold`` (default: the model's) and the lower ones that
        extended a track. ``maskrcnn-body predict`` on a video is this loop
        (:func:`maskrcnn_body.workflows.track.track`)."""
        from maskrcnn_body.inference.tracking import Tracker

        thr = self.score_threshold if score_threshold is None else float(score_threshold)
        tracks = Tracker(tracker)
        low = min(thr, tracks.cfg.low_score)
        model = self.at_threshold(low)
        if isinstance(frames, (str, os.PathLike, int)) and not isinstance(frames, bool):
            loaded = iter_images([frames], max_frames, frame_step, webcams=True)
        else:
            loaded = (load_image(f) for f in frames)
        for result in model._results(loaded, batch_size, low):
            tracks.update(result.persons)
            result.persons = [p for p in result.persons if p.score >= thr or p.track_id is not None]
            yield result

    def at_threshold(self, min_score: float) -> Model:
        """This model, reopened so that the model itself keeps detections down to ``min_score`` when it was
        loaded with a higher threshold (a training directory); else itself."""
        if self._reopen is None or min_score >= self.score_threshold:
            return self
        if min_score not in self._lower:
            self._lower[min_score] = type(self)(
                self._reopen(min_score), min_score, self.name, self.backend, self.format, self._reopen, self.checkpoint
            )
        return self._lower[min_score]

    # ----------------------------------------------------------------------- evaluate
    def evaluate(
        self,
        records,
        max_images: Optional[int] = None,
        dump_dir: Optional[str] = None,
        skip_corrupt: bool = False,
    ):
        """Scores the model on TFRecords (a glob or a list of globs: schema v1, e.g. the synthetic val split)
        with the project's metrics: :class:`~maskrcnn_body.evaluation.evaluator.EvaluationResult` (``summary``
        has box AP, mask AP per channel, keypoint OKS AP, left/right confusion, parsing; docs/METRICS.md).

        Every image runs at full resolution through this model's runner, exactly as a call would run it, with
        every detection kept (score threshold 0: AP needs them all). ``dump_dir``: also write one ``.npz``
        evaluation dump per image there (emptied first; ``maskrcnn-body metric --dumps`` / ``draw`` read
        them). ``max_images``: the first N records only."""
        import shutil

        from maskrcnn_body.evaluation import evaluator
        from maskrcnn_body.inference import record_dumps

        patterns = [records] if isinstance(records, (str, os.PathLike)) else list(records)
        patterns = [os.fspath(p) for p in patterns]
        runner = self.at_threshold(0.0).runner
        if dump_dir:
            shutil.rmtree(dump_dir, ignore_errors=True)
            record_dumps.write_runner_dumps(runner, patterns, dump_dir, max_images, skip_corrupt)
            return evaluator.evaluate_dir(dump_dir)
        return evaluator.evaluate(record_dumps.runner_dumps(runner, patterns, max_images, skip_corrupt))

    def __iter__(self):
        raise TypeError("a Model is not iterable: call it on images (model(images)) or use model.iter_results")


def make_result(image: np.ndarray, det: Dict[str, np.ndarray], score_threshold: float, source: str = "") -> Result:
    """A :class:`Result` from one image's detections (any backend's output).

    Detections whose box, clipped to the image, has no area are dropped: on an extreme aspect ratio
    (e.g. 16x20000) the model can place a box in the padding, which clipping flattens to ``[x, 16, x, 16]``;
    every returned box has positive width and height."""
    scores = np.asarray(det["scores"], np.float32).reshape(-1)
    boxes = np.asarray(det["boxes"], np.float32).reshape(-1, 4)
    has_area = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    order = [int(i) for i in np.argsort(-scores, kind="stable") if scores[i] >= score_threshold and has_area[i]]
    h, w = image.shape[:2]
    persons = [
        Person(
            box=np.asarray(det["boxes"][i], np.float32),
            score=float(scores[i]),
            keypoints=np.asarray(det["keypoints"][i], np.float32),
            mask_probs=np.asarray(det["masks"][i], np.float32),
            image_size=(h, w),
        )
        for i in order
    ]
    return Result(image=image, persons=persons, source=source)


def render_png(image: np.ndarray, det: Dict[str, np.ndarray], score_threshold: float = 0.5, **plot_options) -> bytes:
    """PNG bytes of the drawn prediction (:meth:`Result.plot` with ``plot_options``: the drawing of
    ``predict`` and of the server's ``POST /v1/render``)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(make_result(image, det, score_threshold).plot(**plot_options)).save(buf, "PNG")
    return buf.getvalue()


def predict_json(predictor: Callable, image: np.ndarray, name: str = "", score_threshold: float = 0.5) -> dict:
    """The JSON of one image (``predictor``: a single-image callable returning detections)."""
    return make_result(image, predictor(image), score_threshold, name).to_json()


# --------------------------------------------------------------------------- loading
def load(
    path: Union[str, os.PathLike],
    score_threshold: float = 0.5,
    checkpoint: Optional[str] = None,
    backend: str = "auto",
    num_threads: Optional[int] = None,
    precision: str = "float32",
    device: Optional[str] = None,
    model_class: type = Model,
) -> Model:
    """A :class:`Model` from a training directory (``config.json`` + ``ckpt-N``), an exported
    SavedModel directory, a ``.onnx`` or a ``.tflite`` file, run by ``backend``: ``auto`` (default),
    ``tensorflow``, ``onnxruntime``, ``openvino`` or ``tflite``
    (:mod:`maskrcnn_body.inference.backends`: which backend runs which format, what ``auto`` picks,
    and the cached on-the-fly export of a training directory for the non-TensorFlow backends).
    The same :class:`Result` comes back whatever the backend. A training directory on TensorFlow
    drops detections below ``score_threshold`` inside the model (fewer rows through the mask and
    keypoint heads); call the model with a lower ``score_threshold`` than :func:`load`'s and you get
    only those at or above the model's, so load with the lowest threshold you will use
    (:meth:`Model.track` and :meth:`Model.evaluate` reopen it lower themselves). ``num_threads``: CPU
    threads of the ONNX Runtime, OpenVINO and TFLite backends (default: all cores). ``precision="bfloat16"``
    (TensorFlow on a training directory, OpenVINO): bfloat16 convolutions, several times faster on
    CPUs with AMX or AVX512-BF16, outputs within bfloat16's rounding of float32's (docs/BENCHMARKS.md
    gives the accuracy change). ``device``: ``None`` (default: the CPU; TensorFlow uses its GPU when
    it sees one), ``"cpu"``, ``"cuda"`` / ``"cuda:N"`` / ``"gpu"`` (TensorFlow, ONNX Runtime's CUDA provider),
    ``"tensorrt"`` (ONNX Runtime), ``"gpu"`` / ``"npu"`` (OpenVINO); a device that is absent or that the
    backend cannot use is a :class:`~maskrcnn_body.inference.backends.BackendError` saying what to install
    (``backends.DEVICES``; docs/DEPLOY.md). An exported ``.onnx`` / ``.tflite`` file runs without TensorFlow
    (``pip install "maskrcnn_body[runtime-onnx]"``, ``[runtime-tflite]``, ``[runtime-openvino]``).
    ``model_class``: the class to build (``maskrcnn_body.load`` gives the workflow layer's, which adds
    ``export``)."""
    from maskrcnn_body.inference import backends

    path = os.fspath(path)
    fmt = backends.model_format(path)

    def open_at(min_score: float):
        return backends.open_runner(
            path,
            checkpoint=checkpoint,
            backend=backend,
            num_threads=num_threads,
            log=lambda msg: print(msg, file=sys.stderr, flush=True),
            precision=precision,
            min_score=min_score,
            device=device,
        )

    runner, name = open_at(score_threshold)
    reopen = (lambda min_score: open_at(min_score)[0]) if fmt == "train_dir" else None
    return model_class(runner, score_threshold, path, name, fmt, reopen=reopen, checkpoint=checkpoint)
