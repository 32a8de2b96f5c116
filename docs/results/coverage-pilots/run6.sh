#!/usr/bin/env bash
# Sixth pilots (validation photos only): SGD traded agreement for fooling along one curve
# (β 2: agreement 56 %, × 0.45; feature term 20: 71 %, × 0.59; 100 diverged). Adam at a
# fine-tuning learning rate, with the feature term, the image's class (k 1) and every class.
cd "$(dirname "$0")/../../.."
. "${VENV:-.venv}/bin/activate"
export CAMS_CHECKPOINTS="${PILOTS:-/tmp/pilots}/registry" CAMS_OFFLINE=1
run() {
  name=$1; shift
  [ -f "${PILOTS:-/tmp/pilots}/registry"/$name.json ] || python -m cam_studio train --name $name --preset paper-sham \
      --objective kl --data photos:wide --val-size 64 --seed 0 "$@" > "${PILOTS:-/tmp/pilots}"/$name.train.log 2>&1
  python -m cam_studio check $name --photos validation --crops 48 --out docs/results/coverage-pilots > "${PILOTS:-/tmp/pilots}"/$name.check.log 2>&1
}
run pilot-adam-k1-b2-f20 --optimizer adam --lr 0.0001 --attack-classes 1 --beta 2 --feature-weight 20 --steps 400 --val-every 400
run pilot-adam-k0-b2-f20 --optimizer adam --lr 0.0001 --attack-classes 0 --beta 2 --feature-weight 20 --steps 400 --val-every 400
echo ALLDONE >> "${PILOTS:-/tmp/pilots}"/done6.txt
