"""maskrcnn_body: multi-person body-part segmentation + keypoints with one TF2/Keras Mask R-CNN.

TensorFlow itself is an extra so CPU users never pull the CUDA stack:
  pip install -e ".[cpu]"   -> tensorflow-cpu 2.21 (what `make` installs by default)
  pip install -e ".[gpu]"   -> tensorflow[and-cuda] 2.21 (Linux + NVIDIA GPU)
  pip install -e .          -> bring your own TensorFlow 2.21 build
"""
from setuptools import find_packages, setup

TF = "2.21.*"
setup(
    name="maskrcnn_body",
    version="0.1.0",
    description="Multi-person body-part segmentation (7 channels) and 15 keypoints with one Keras Mask R-CNN",
    packages=find_packages(include=["maskrcnn_body", "maskrcnn_body.*"]),
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.26",
        "pillow>=10",
        "scipy>=1.11",
        "pycocotools>=2.0.7",
        "absl-py>=2.0",
        "matplotlib>=3.8",
    ],
    extras_require={
        "cpu": [f"tensorflow-cpu=={TF}"],
        "gpu": [f"tensorflow[and-cuda]=={TF}"],
        "test": ["pytest>=8"],
        "video": ["opencv-python-headless>=4.8"],
    },
)
