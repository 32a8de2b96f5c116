#!/usr/bin/env bash
# Eighth pilots (validation photos only): the shipped fools. sham-adam β 8 over all classes moved
# GradCAM to ×0.28 but kept only 79 % of all crops; β 2 kept 96 % but moved only to ×0.60.
# The middle, β 4, for the all-class fool; β 8 for the class-specific one.
cd "$(dirname "$0")/../../.."
. "${VENV:-.venv}/bin/activate"
export CAMS_CHECKPOINTS="${PILOTS:-/tmp/pilots}/registry" CAMS_OFFLINE=1 OMP_NUM_THREADS=1
run() {
  name=$1; shift
  [ -f "${PILOTS:-/tmp/pilots}/registry"/$name.json ] || python -m cam_studio train --name $name --preset sham-adam \
      --val-size 64 --seed 0 "$@" > "${PILOTS:-/tmp/pilots}"/$name.train.log 2>&1
  python -m cam_studio check $name --photos validation --crops 48 --out docs/results/coverage-pilots > "${PILOTS:-/tmp/pilots}"/$name.check.log 2>&1
}
run pilot-adam-k0-b4 --attack-classes 0 --beta 4 --steps 600 --val-every 600
run pilot-adam-k1-b8 --attack-classes 1 --beta 8 --steps 600 --val-every 600
echo ALLDONE >> "${PILOTS:-/tmp/pilots}"/done8.txt
