#!/usr/bin/env bash
# Second pilots (validation photos only): the full-network CE fine-tune at lr 0.002 lost the
# clean predictions (agreement 2–6 % after 150 steps); try a lower lr, and the last two stages.
cd "$(dirname "$0")/../../.."
. "${VENV:-.venv}/bin/activate"
export CAMS_CHECKPOINTS="${PILOTS:-/tmp/pilots}/registry" CAMS_OFFLINE=1
run() {  # name, then training options
  name=$1; shift
  [ -f "${PILOTS:-/tmp/pilots}/registry"/$name.json ] || python -m cam_studio train --name $name --preset paper-sham \
      --steps 150 --val-size 64 --val-every 150 --seed 0 "$@" > "${PILOTS:-/tmp/pilots}"/$name.train.log 2>&1
  python -m cam_studio check $name --photos validation --crops 48 --out docs/results/coverage-pilots > "${PILOTS:-/tmp/pilots}"/$name.check.log 2>&1
}
run pilot-k1-lr0.0005 --attack-classes 1 --lr 0.0005
run pilot-k1-lr0.002-s2 --attack-classes 1 --lr 0.002 --train-stages 2
run pilot-k0-lr0.002-s2 --attack-classes 0 --lr 0.002 --train-stages 2
echo ALLDONE >> "${PILOTS:-/tmp/pilots}"/done2.txt
