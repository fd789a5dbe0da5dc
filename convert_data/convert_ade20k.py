"""Converts ADE20K persons (+ sided parts) from the 2016/2017 (_atr.txt) or 2021 (.json) layout.

  python convert_data/convert_ade20k.py --root data/ADE20K_2021_17_01 --split training --out data/records/ade_train
"""
from absl import flags

from maskrcnn_body.convert import cli
from maskrcnn_body.convert.ade20k import Ade20kConverter

cli.define_common_flags()
flags.DEFINE_string("index", None, "2016 layout: index_ade20k.mat (objectnames) to resolve class ids by "
                    "name; default: ROOT/index_ade20k.mat or ROOT/*/index_ade20k.mat when present, else "
                    "the _atr.txt names are used.")
flags.DEFINE_bool("derive_torso", False, "Fill an unannotated torso with the largest blob of body minus "
                  "the other parts (else the torso channel is marked unknown).")
flags.DEFINE_bool("keep_negatives", False, "Also write images without persons (as negatives).")


def build(f):
    return Ade20kConverter(f.root, split=f.split, index=f.index, derive_torso=f.derive_torso,
                           keep_negatives=f.keep_negatives)


if __name__ == "__main__":
    cli.run(build)
