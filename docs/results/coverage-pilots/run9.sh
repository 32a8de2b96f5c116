#!/usr/bin/env bash
# Ninth pilot (validation photos only): the class-specific fool. β 8 on one class moved GradCAM
# to ×0.42 but kept only 67 % of all crops; a four times heavier prediction-keeping term (α 2).
cd "$(dirname "$0")/../../.."
. "${VENV:-.venv}/bin/activate"
export CAMS_CHECKPOINTS="${PILOTS:-/tmp/pilots}/registry" CAMS_OFFLINE=1 OMP_NUM_THREADS=1
run() {
  name=$1; shift
  [ -f "${PILOTS:-/tmp/pilots}/registry"/$name.json ] || python -m cam_studio train --name $name --preset sham-adam \
      --val-size 64 --seed 0 "$@" > "${PILOTS:-/tmp/pilots}"/$name.train.log 2>&1
  python -m cam_studio check $name --photos validation --crops 48 --out docs/results/coverage-pilots > "${PILOTS:-/tmp/pilots}"/$name.check.log 2>&1
}
run pilot-adam-k1-b8-a2 --attack-classes 1 --beta 8 --alpha 2 --steps 600 --val-every 600
echo ALLDONE >> "${PILOTS:-/tmp/pilots}"/done9.txt
