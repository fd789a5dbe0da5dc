"""Sharded, atomic TFRecord writing.

Shards are named ``PREFIX-00000-of-0000K.tfrecord``. Every shard is first written under a
temporary name beside it (:func:`maskrcnn_body.utils.files.temp_path`: hidden, with ``.tmp-``)
and renamed to its final name only when the whole set is complete (:meth:`ShardedWriter.close`),
so a killed conversion never leaves a truncated shard under a final name. Writing the same
prefix again replaces the old set (stale shards of the same prefix with another shard count are
removed on close).
"""

from __future__ import annotations

from maskrcnn_body.errors import InvalidArgument

import contextlib
import glob
import os
import re
from typing import List

from maskrcnn_body.utils.files import commit, remove_path, temp_path

SHARD_RE = re.compile(r"-(\d{5})-of-(\d{5})\.tfrecord$")


def shard_name(prefix: str, index: int, num_shards: int) -> str:
    return f"{prefix}-{index:05d}-of-{num_shards:05d}.tfrecord"


def shard_paths(prefix: str, num_shards: int) -> List[str]:
    return [shard_name(prefix, i, num_shards) for i in range(num_shards)]


def existing_shards(prefix: str) -> List[str]:
    """Final (complete) shard files of ``prefix``, sorted."""
    return sorted(p for p in glob.glob(glob.escape(prefix) + "-*-of-*.tfrecord") if SHARD_RE.search(p))


class ShardedWriter:
    """Writes serialised examples round-robin into ``num_shards`` shards, atomically.

    Use as a context manager; on an exception inside the block the temporary files are
    deleted and no final shard is created or replaced.
    """

    def __init__(self, prefix: str, num_shards: int = 1, compression: str = ""):
        if num_shards < 1:
            raise InvalidArgument(f"num_shards must be >= 1, got {num_shards}")
        import tensorflow as tf

        self.prefix = prefix
        self.num_shards = num_shards
        self.final = shard_paths(prefix, num_shards)
        self.tmp = [temp_path(p) for p in self.final]
        d = os.path.dirname(os.path.abspath(prefix))
        os.makedirs(d, exist_ok=True)
        opts = tf.io.TFRecordOptions(compression_type=compression)
        self._writers = [tf.io.TFRecordWriter(p, opts) for p in self.tmp]
        self.count = 0
        self._closed = False

    def write(self, serialized: bytes) -> None:
        self._writers[self.count % self.num_shards].write(serialized)
        self.count += 1

    def close(self) -> List[str]:
        """Flushes, renames the temporaries to final names and returns the final paths."""
        if self._closed:
            return self.final
        for w in self._writers:
            w.close()
        stale = set(existing_shards(self.prefix)) - set(self.final)
        for tmp, final in zip(self.tmp, self.final):
            commit(tmp, final)
        for p in stale:
            os.remove(p)
        self._closed = True
        return self.final

    def abort(self) -> None:
        """Drops everything written so far; final names are left untouched."""
        for w in self._writers:
            with contextlib.suppress(Exception):
                w.close()
        for p in self.tmp:
            remove_path(p)
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


def write_records(prefix: str, serialized_examples, num_shards: int = 1) -> List[str]:
    """Writes an iterable of serialised examples; returns the final shard paths."""
    with ShardedWriter(prefix, num_shards) as w:
        for s in serialized_examples:
            w.write(s)
    return w.final


def iterate_records(pattern_or_paths, skip_corrupt: bool = False, stats: dict | None = None):
    """Yields ``(path, index, serialized)`` for every record in shards matching the glob(s).

    A truncated/corrupt shard raises ``RecordError`` naming the file, unless
    ``skip_corrupt`` is set: then the rest of that shard is skipped and counted in
    ``stats["corrupt_shards"]`` (a list of (path, message)).
    """
    import tensorflow as tf

    from maskrcnn_body.data.schema import RecordError

    paths = expand_patterns(pattern_or_paths)
    for path in paths:
        i = 0
        try:
            for rec in tf.data.TFRecordDataset(path).as_numpy_iterator():
                yield path, i, rec
                i += 1
        except tf.errors.DataLossError as e:
            msg = f"{path}: corrupt or truncated TFRecord after record {i} ({e.message.splitlines()[0]})"
            if not skip_corrupt:
                raise RecordError(msg) from None
            if stats is not None:
                stats.setdefault("corrupt_shards", []).append((path, msg))


def expand_patterns(pattern_or_paths) -> List[str]:
    """Sorted unique files matching one glob / comma-separated globs / a list of globs.

    Raises FileNotFoundError naming the patterns when nothing matches.
    """
    if isinstance(pattern_or_paths, str):
        pats = [p for p in pattern_or_paths.split(",") if p]
    else:
        pats = list(pattern_or_paths)
    out: List[str] = []
    for p in pats:
        hits = sorted(glob.glob(p)) if any(ch in p for ch in "*?[") else ([p] if os.path.exists(p) else [])
        out.extend(h for h in hits if not h.endswith(".json") and ".tmp-" not in h)
    out = sorted(set(out))
    if not out:
        raise FileNotFoundError(f"no TFRecord files match {pats!r}")
    return out
