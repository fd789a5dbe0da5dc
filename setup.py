"""maskrcnn_body: multi-person body-part segmentation + keypoints with one TF2/Keras Mask R-CNN.

TensorFlow itself is an extra so CPU users never pull the CUDA stack:
  pip install -e ".[cpu]"   -> tensorflow-cpu 2.21 (what `make` installs by default)
  pip install -e ".[gpu]"   -> tensorflow[and-cuda] 2.21 (Linux + NVIDIA GPU)
  pip install -e .          -> bring your own TensorFlow 2.21 build
The compiled ops (libs/) are optional: `make` builds them; without them the pure-TF ops run.
The inference server (`maskrcnn-body serve`, `python train/test.py`: Starlette on uvicorn) is part of the
default install: it is the original's demo entry point and its dependencies are small and pure Python.
Inference backends besides TensorFlow / TFLite are extras too (README, "Backends"):
  pip install -e ".[onnx]"      -> ONNX export (tf2onnx) and the onnxruntime backend
  pip install -e ".[openvino]"  -> the openvino backend (runs the ONNX export)
"""

import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "maskrcnn_body", "version.py")) as f:
    VERSION = re.search(r'__version__ = "([^"]+)"', f.read()).group(1)

TF = "2.21.*"
ONNX = ["tf2onnx>=1.16", "onnx>=1.15", "onnxruntime>=1.17"]
setup(
    name="maskrcnn_body",
    version=VERSION,
    description="Multi-person body-part segmentation (7 channels) and 15 keypoints with one Keras Mask R-CNN",
    license="Apache-2.0",
    packages=find_packages(include=["maskrcnn_body", "maskrcnn_body.*"]),
    package_data={
        "maskrcnn_body": [
            "ops/*.so",
            "serving/static/*.html",
            "serving/static/browser/*.*",
            "serving/static/browser/runtime/*",
        ]
    },
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.26",
        "pillow>=10",
        "scipy>=1.11",
        "pycocotools>=2.0.7",
        "absl-py>=2.0",
        "matplotlib>=3.8",
        # the inference server and its demo page (maskrcnn_body.serving.http_server)
        "starlette>=0.40,<2",
        "uvicorn>=0.30,<1",
        "h11>=0.14",
        "python-multipart>=0.0.18",
        "threadpoolctl>=3.1",
    ],
    extras_require={
        "cpu": [f"tensorflow-cpu=={TF}"],
        "gpu": [f"tensorflow[and-cuda]=={TF}"],
        # playwright drives the system's Chromium in tests/test_browser_demo.py (.ci/run apt-installs it;
        # Playwright's own browser download is not used)
        "test": ["pytest>=8", "ruff>=0.6", "mypy>=1.10", "opencv-python-headless>=4.8", "playwright>=1.40", *ONNX],
        "onnx": ONNX,
        "openvino": ["openvino>=2024.0", *ONNX],
        "video": ["opencv-python-headless>=4.8"],
    },
    entry_points={"console_scripts": ["maskrcnn-body = maskrcnn_body.cli:main"]},
)
