"""Pictures of people and metrics (numpy + PIL + matplotlib; never imports TensorFlow).

``draw``: part overlays, legend, body outlines, boxes, skeletons, dump / record rendering.
``plots``: precision-recall curves and the per-part AP bar chart.
"""
