"""Converts ChaLearn LAP 2014 Track 1 (limb masks of up to 2 actors) to schema-v1 TFRecords.

  python convert_data/convert_chalearn.py --root data/chalearn/train --frame_step 6 --out data/records/chalearn
--split: 'all', a sub-folder of --root (e.g. train, validation) or a comma list of sequences (Seq01,Seq02).
"""
from absl import flags

from maskrcnn_body.convert import cli
from maskrcnn_body.convert.chalearn import ChalearnConverter

cli.define_common_flags()
flags.DEFINE_integer("frame_step", 1, "Keep frames 1, 1+step, 1+2*step, ... of each sequence.", lower_bound=1)


def build(f):
    return ChalearnConverter(f.root, split=f.split, frame_step=f.frame_step)


if __name__ == "__main__":
    cli.run(build)
