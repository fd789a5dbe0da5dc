"""Converts JHMDB (frames, puppet masks, 15 joints; parts from puppet_flow when present).

  python convert_data/convert_jhmdb.py --root data/jhmdb --split train1 --out data/records/jhmdb_train1
"""
from maskrcnn_body.convert import cli
from maskrcnn_body.convert.jhmdb import JhmdbConverter

cli.define_common_flags()


def build(f):
    return JhmdbConverter(f.root, split=f.split)


if __name__ == "__main__":
    cli.run(build)
