#!/usr/bin/env bash
# Seventh to ninth pilots (validation photos only): the shipped fools. sham-adam kept the
# predictions (88 % / 96 %) but GradCAM went only to × 0.60: a stronger SHAM term (β 8) and more
# steps; then β 4 between them for the all-class fool; then, for the one-class fool (β 8 kept
# only 67 % of all crops), a four times heavier prediction-keeping term (α 2).
cd "$(dirname "$0")/../../.."
. "${VENV:-.venv}/bin/activate"
export CAMS_CHECKPOINTS="${PILOTS:-/tmp/pilots}/registry" CAMS_OFFLINE=1 OMP_NUM_THREADS=1
run() {
  name=$1; shift
  [ -f "${PILOTS:-/tmp/pilots}/registry"/$name.json ] || python -m cam_studio train --name $name --preset sham-adam \
      --val-size 64 --seed 0 "$@" > "${PILOTS:-/tmp/pilots}"/$name.train.log 2>&1
  python -m cam_studio check $name --photos validation --crops 48 --out docs/results/coverage-pilots > "${PILOTS:-/tmp/pilots}"/$name.check.log 2>&1
}
run pilot-adam-k0-b8 --attack-classes 0 --beta 8 --steps 600 --val-every 600
run pilot-adam-k1-b8 --attack-classes 1 --beta 8 --steps 600 --val-every 600
run pilot-adam-k0-b4 --attack-classes 0 --beta 4 --steps 600 --val-every 600
run pilot-adam-k1-b8-a2 --attack-classes 1 --beta 8 --alpha 2 --steps 600 --val-every 600
echo ALLDONE >> "${PILOTS:-/tmp/pilots}"/done7.txt
