"""maskrcnn_body: multi-person body-part segmentation + keypoints with one Keras Mask R-CNN."""
__version__ = "0.1.0"
