"""Dataset converters to TFRecord schema v1 (docs/DATASETS.md, docs/DESIGN.md).

Each dataset module (``pascal_part``, ``jhmdb``, ``ade20k``, ``chalearn``, ``coco``, ``densepose_coco``,
``legacy``, ``synthetic`` (the built-in dataset; its renderer is :mod:`maskrcnn_body.data.synthetic`),
and ``custom`` for one's own annotations in the format of docs/DATASETS.md)
only lists its items and turns one item into ``ImageRecord``s; the shared machinery (items, skip
reasons, workers, strict mode, summary JSON, atomic sharded output) is
:mod:`maskrcnn_body.data.conversion`, and the command line is ``maskrcnn-body convert DATASET``.
Each module's docstring states its label -> channel mapping, its ``parts_valid`` rule and its
coordinate conversion.
"""
