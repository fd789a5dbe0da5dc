#!/usr/bin/env bash
# Downloads the body-part datasets and converts them to schema-v1 TFRecords.
#
# usage: convert_data/download_and_convert_data.sh [--data_dir DIR] [--out_dir DIR] [--no-download]
#                                                  [--num_workers N] [--num_shards N] [DATASET ...]
#   DATASET: pascal_part jhmdb ade20k chalearn coco densepose_coco (default: all of them). Each step runs alone.
#   --data_dir     where datasets are downloaded/extracted (default: data); dataset roots are
#                  DATA_DIR/<dataset> in the layout the converters expect (see datasets.md).
#   --out_dir      where records go (default: DATA_DIR/records): OUT_DIR/<dataset>_<split>-*.tfrecord
#   --no-download  use data already on disk under DATA_DIR/<dataset> (fails if it is missing).
# A conversion whose shards already exist is skipped (delete them to redo it). A download is
# skipped when its archive was already extracted. ADE20K 2021 and ChaLearn need a registration:
# put them under DATA_DIR/ade20k and DATA_DIR/chalearn yourself and run with --no-download.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python}"
DATA_DIR="data"
OUT_DIR=""
DOWNLOAD=1
NUM_WORKERS=2
NUM_SHARDS=1
DATASETS=()

usage() { sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --data_dir) DATA_DIR="$2"; shift 2 ;;
    --out_dir) OUT_DIR="$2"; shift 2 ;;
    --no-download|--no_download) DOWNLOAD=0; shift ;;
    --num_workers) NUM_WORKERS="$2"; shift 2 ;;
    --num_shards) NUM_SHARDS="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    pascal_part|jhmdb|ade20k|chalearn|coco|densepose_coco) DATASETS+=("$1"); shift ;;
    *) echo "error: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
[[ ${#DATASETS[@]} -gt 0 ]] || DATASETS=(pascal_part jhmdb ade20k chalearn coco densepose_coco)
OUT_DIR="${OUT_DIR:-$DATA_DIR/records}"
DOWNLOADS="$DATA_DIR/downloads"

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

# fetch URL: downloads into DOWNLOADS (resumable), checks the file is not empty.
fetch() {
  local url="$1" file
  file="$DOWNLOADS/$(basename "$url")"
  mkdir -p "$DOWNLOADS"
  if [[ ! -s "$file" ]]; then
    log "downloading $url"
    wget -c --progress=dot:giga -O "$file.part" "$url" || die "download of $url failed"
    mv "$file.part" "$file"
  fi
  [[ -s "$file" ]] || die "$file is empty"
  log "$(basename "$file"): $(du -h "$file" | cut -f1)"
  echo "$file"
}

# extract ARCHIVE DEST: tar/zip extraction into DEST; fails loudly on a damaged archive.
extract() {
  local archive="$1" dest="$2"
  mkdir -p "$dest"
  log "extracting $(basename "$archive") into $dest"
  case "$archive" in
    *.zip) unzip -q -o "$archive" -d "$dest" || die "unzip $archive failed (damaged download? delete it)" ;;
    *.tar.gz|*.tgz) tar -xzf "$archive" -C "$dest" || die "tar $archive failed (damaged download? delete it)" ;;
    *.tar) tar -xf "$archive" -C "$dest" || die "tar $archive failed (damaged download? delete it)" ;;
    *) die "unknown archive type: $archive" ;;
  esac
}

# fetch_extract URL DEST: fetch + extract (stops the script when either fails).
fetch_extract() {
  local file
  file="$(fetch "$1")"
  extract "$file" "$2"
}

# need_root DATASET DIR...: checks the dataset root has the listed sub-folders.
need_root() {
  local name="$1"; shift
  local d
  for d in "$@"; do
    [[ -e "$DATA_DIR/$name/$d" ]] || die "$name: $DATA_DIR/$name/$d is missing (see shared/docs/datasets.md)"
  done
}

# convert DATASET SPLIT [extra flags]: runs convert_data/convert_DATASET.py unless its shards exist.
convert() {
  local name="$1" split="$2"; shift 2
  local prefix="$OUT_DIR/${name}_${split}"
  if compgen -G "$prefix-*-of-*.tfrecord" > /dev/null; then
    log "$name/$split: $prefix-*.tfrecord exists, skipped"
    return 0
  fi
  mkdir -p "$OUT_DIR"
  log "$name/$split: converting into $prefix"
  "$PYTHON" "$SCRIPT_DIR/convert_$name.py" --root "$DATA_DIR/$name" --split "$split" --out "$prefix" \
    --num_workers "$NUM_WORKERS" --num_shards "$NUM_SHARDS" --noprogress "$@"
}

# ----------------------------------------------------------------------------- datasets
pascal_part() {
  local root="$DATA_DIR/pascal_part"
  if [[ $DOWNLOAD -eq 1 && ! -d "$root/Annotations_Part" ]]; then
    fetch_extract http://www.stat.ucla.edu/~xianjie.chen/pascal_part_dataset/trainval.tar.gz "$root"
    fetch_extract http://host.robots.ox.ac.uk/pascal/VOC/voc2010/VOCtrainval_03-May-2010.tar "$root"
    ln -sfn VOCdevkit/VOC2010/JPEGImages "$root/JPEGImages"
    ln -sfn VOCdevkit/VOC2010/ImageSets "$root/ImageSets"
  fi
  need_root pascal_part Annotations_Part JPEGImages
  if [[ -d "$root/ImageSets/Main" ]]; then
    convert pascal_part train
    convert pascal_part val
  else
    convert pascal_part all
  fi
}

jhmdb() {
  # Files of http://jhmdb.is.tue.mpg.de/ (URLs of its download page; not re-checked here).
  local root="$DATA_DIR/jhmdb" f
  if [[ $DOWNLOAD -eq 1 && ! -d "$root/joint_positions" ]]; then
    for f in Rename_Images.tar.gz joint_positions.zip puppet_mask.zip puppet_flow_com.zip splits.zip; do
      fetch_extract "http://files.is.tue.mpg.de/jhmdb/$f" "$root"
    done
  fi
  need_root jhmdb Rename_Images joint_positions puppet_mask
  if [[ -d "$root/splits" ]]; then
    convert jhmdb train1
    convert jhmdb test1
  else
    convert jhmdb all
  fi
}

ade20k() {
  local root="$DATA_DIR/ade20k"
  if [[ $DOWNLOAD -eq 1 && ! -d "$root" ]]; then
    # 2016 release (no registration); the 2021 release must be downloaded by hand after registering.
    fetch_extract http://groups.csail.mit.edu/vision/datasets/ADE20K/ADE20K_2016_07_26.zip "$root"
  fi
  need_root ade20k .
  convert ade20k training
  convert ade20k validation
}

chalearn() {
  # ChaLearn LAP 2014 Track 1 needs a registration: extract the SeqNN.zip files into DATA_DIR/chalearn.
  [[ -d "$DATA_DIR/chalearn" ]] || die "chalearn: put the extracted SeqNN folders under $DATA_DIR/chalearn (registration needed)"
  convert chalearn all --frame_step "${CHALEARN_FRAME_STEP:-1}"
}

coco() {
  local root="$DATA_DIR/coco" f
  if [[ $DOWNLOAD -eq 1 && ! -d "$root/annotations" ]]; then
    for f in annotations/annotations_trainval2017.zip zips/train2017.zip zips/val2017.zip; do
      fetch_extract "http://images.cocodataset.org/$f" "$root"
    done
  fi
  need_root coco annotations
  convert coco val2017
  convert coco train2017
}

densepose_coco() {
  # DensePose-COCO annotations (facebookresearch/DensePose, DensePoseData/get_DensePose_COCO.sh; CC BY-NC 4.0
  # repository, docs/DATASETS.md) on the COCO 2014 images (~19 GB): train + valminusminival train, minival tests.
  local root="$DATA_DIR/densepose_coco" split file
  if [[ $DOWNLOAD -eq 1 ]]; then
    mkdir -p "$root/annotations"
    for split in train valminusminival minival; do
      if [[ ! -s "$root/annotations/densepose_coco_2014_$split.json" ]]; then
        file="$(fetch "https://dl.fbaipublicfiles.com/densepose/densepose_coco_2014_$split.json")"
        cp "$file" "$root/annotations/"
      fi
    done
    for split in train2014 val2014; do
      [[ -d "$root/$split" ]] || fetch_extract "http://images.cocodataset.org/zips/$split.zip" "$root"
    done
  fi
  need_root densepose_coco annotations train2014 val2014
  convert densepose_coco minival
  convert densepose_coco valminusminival
  convert densepose_coco train
}

for ds in "${DATASETS[@]}"; do
  log "=== $ds"
  "$ds"
done
log "done: records in $OUT_DIR"
