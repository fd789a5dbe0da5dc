"""The one image decoder (maskrcnn_body.data.images) and its call sites (the API, the walker of `predict`)."""

import io
import time

import numpy as np
import pytest
from PIL import Image

from bench.load_test_hostile import EPS, encode, junk_jpeg, many_subblock_gif, padded_png, scene
from maskrcnn_body.data import images
from maskrcnn_body.inference import api


def exif_jpeg(rgb: np.ndarray, orientation: int) -> bytes:
    """``rgb`` stored as a JPEG with EXIF orientation ``orientation`` (as phones write them)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(rgb, "JPEG", quality=95, exif=exif.tobytes())


def png16(grey: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(grey.astype(np.uint16)).save(buf, "PNG")
    return buf.getvalue()


def _decoders(tmp_path):
    """The three call sites, each given encoded bytes: the API (bytes and path), the walker of predict (path)."""

    def via_path(fn):
        def run(data):
            p = tmp_path / "img.bin"
            p.write_bytes(data)
            return fn(str(p))

        return run

    return {
        "api_bytes": lambda data: api.load_image(data)[0],
        "api_path": via_path(lambda p: api.load_image(p)[0]),
        "cli_predict": via_path(lambda p: next(api.iter_images([p]))[0]),  # the walker of predict
    }


@pytest.mark.parametrize("site", ["api_bytes", "api_path", "cli_predict"])
def test_exif_orientation_is_applied_everywhere(tmp_path, site):
    landscape = scene(48, 80)  # stored 80 wide, 48 high; orientation 6 = shown rotated 90 degrees clockwise
    data = exif_jpeg(landscape, 6)
    out = _decoders(tmp_path)[site](data)
    assert out.shape == (80, 48, 3) and out.dtype == np.uint8
    expected = np.rot90(landscape, k=-1)  # clockwise
    assert np.abs(out.astype(int) - expected.astype(int)).mean() < 4  # JPEG loss only


@pytest.mark.parametrize("site", ["api_bytes", "cli_predict"])
def test_16_bit_greyscale_is_scaled_not_clipped(tmp_path, site):
    ramp = np.tile(np.linspace(0, 65535, 64), (32, 1)).round()
    out = _decoders(tmp_path)[site](png16(ramp))
    assert out.shape == (32, 64, 3)
    np.testing.assert_array_equal(out[..., 0], np.rint(ramp * 255 / 65535).astype(np.uint8))
    assert (out[..., 0] == out[..., 2]).all() and out.min() == 0 and out.max() == 255


REFUSED = {
    "eps": (EPS, "PostScript/EPS"),
    "pdf": (b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n", "PDF"),
    "gif": (encode(np.zeros((20, 20), np.uint8), "GIF"), "GIF"),
    "tiff": (encode(scene(20, 20), "TIFF"), "TIFF"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
@pytest.mark.parametrize("site", ["api_bytes", "api_path", "cli_predict"])
def test_only_allowed_formats_reach_pillow(tmp_path, monkeypatch, case, site):
    data, fmt = REFUSED[case]
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(1) or real_open(*a, **k))
    with pytest.raises(ValueError, match=f"a {fmt} file; accepted formats: JPEG, PNG, WebP, BMP"):
        _decoders(tmp_path)[site](data)
    assert not opened  # no Pillow plugin (and no Ghostscript) ever ran on it


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP"])
def test_allowed_formats_decode(fmt):
    rgb = scene(24, 40)
    out = images.decode_image(encode(rgb, fmt, **({"lossless": True} if fmt == "WEBP" else {})))
    assert out.shape == (24, 40, 3) and out.dtype == np.uint8
    if fmt != "JPEG":
        np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize(
    "body",
    [padded_png(4 << 20), junk_jpeg(4 << 20)],
    ids=["chunk_padded_png", "junk_after_jpeg_start"],
)
def test_pathological_structure_is_refused_fast(body):
    t0 = time.perf_counter()
    with pytest.raises(images.ImageLimitError, match="re-encode"):
        images.check_image(body)
    assert time.perf_counter() - t0 < 0.5  # Pillow's own loops take seconds on these


def test_gif_with_many_sub_blocks_is_refused_before_parsing():
    t0 = time.perf_counter()
    with pytest.raises(images.UnsupportedImageFormat, match="GIF"):
        images.decode_image(many_subblock_gif(2_000_000))
    assert time.perf_counter() - t0 < 0.5


def test_limits_name_the_image_and_what_to_do():
    with pytest.raises(images.ImageLimitError, match=r"16x2000, an aspect ratio of 125:1.*crop"):
        images.check_image(encode(scene(2000, 16), "PNG"), images.Limits(max_aspect_ratio=20))
    with pytest.raises(images.ImageLimitError, match="above the pixel limit of 100; resize"):
        images.check_image(encode(scene(16, 16), "PNG"), images.Limits(max_pixels=100))
    with pytest.raises(images.ImageLimitError, match="at least 32"):
        images.check_image(encode(scene(16, 40), "PNG"), images.Limits(min_side=32))
    truncated = encode(scene(64, 64), "JPEG")[:400]
    with pytest.raises(images.ImageDecodeError, match="truncated or corrupt"):
        images.decode_image(truncated, name="'x.jpg'")
    assert images.check_image(encode(scene(30, 50), "PNG")) == (50, 30, "PNG")
