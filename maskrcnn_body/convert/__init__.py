"""Dataset converters to TFRecord schema v1 (see ``docs/DESIGN.md`` and ``shared/docs/datasets.md``).

``common`` holds the shared machinery (items, skip reasons, workers, strict mode, summary JSON,
atomic sharded output) and ``cli`` the shared absl flags; each dataset module
(``pascal_part``, ``jhmdb``, ``ade20k``, ``chalearn``, ``coco``, ``legacy``) only lists its
items and turns one item into ``ImageRecord``s. Each module's docstring states its label ->
channel mapping, its ``parts_valid`` rule and its coordinate conversion.
"""
