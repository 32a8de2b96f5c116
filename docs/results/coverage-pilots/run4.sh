#!/usr/bin/env bash
# Fourth pilots (validation photos only): the shipped fools' recipe. KL to the clean model,
# OpenCV's samples added to the training photos (photos:wide), a stronger SHAM term, more steps.
cd "$(dirname "$0")/../../.."
. "${VENV:-.venv}/bin/activate"
export CAMS_CHECKPOINTS="${PILOTS:-/tmp/pilots}/registry" CAMS_OFFLINE=1
run() {
  name=$1; shift
  [ -f "${PILOTS:-/tmp/pilots}/registry"/$name.json ] || python -m cam_studio train --name $name --preset paper-sham \
      --objective kl --data photos:wide --val-size 64 --seed 0 "$@" > "${PILOTS:-/tmp/pilots}"/$name.train.log 2>&1
  python -m cam_studio check $name --photos validation --crops 48 --out docs/results/coverage-pilots > "${PILOTS:-/tmp/pilots}"/$name.check.log 2>&1
}
run pilot-wide-k1-b2 --attack-classes 1 --beta 2 --steps 400 --val-every 400
run pilot-wide-k0-b2 --attack-classes 0 --beta 2 --steps 400 --val-every 400
echo ALLDONE >> "${PILOTS:-/tmp/pilots}"/done4.txt
