#!/usr/bin/env bash
# Third pilots (validation photos only): CE to the clean top-1 lost the predictions in every
# setting tried (agreement 2–56 %); KL to the clean model (cross-entropy to its soft labels).
cd "$(dirname "$0")/../../.."
. "${VENV:-.venv}/bin/activate"
export CAMS_CHECKPOINTS="${PILOTS:-/tmp/pilots}/registry" CAMS_OFFLINE=1
run() {
  name=$1; shift
  [ -f "${PILOTS:-/tmp/pilots}/registry"/$name.json ] || python -m cam_studio train --name $name --preset paper-sham \
      --objective kl --steps 150 --val-size 64 --val-every 150 --seed 0 "$@" > "${PILOTS:-/tmp/pilots}"/$name.train.log 2>&1
  python -m cam_studio check $name --photos validation --crops 48 --out docs/results/coverage-pilots > "${PILOTS:-/tmp/pilots}"/$name.check.log 2>&1
}
run pilot-kl-k1 --attack-classes 1
run pilot-kl-k0 --attack-classes 0
run pilot-kl-k1-s2 --attack-classes 1 --train-stages 2
run pilot-kl-k0-s2 --attack-classes 0 --train-stages 2
echo ALLDONE >> "${PILOTS:-/tmp/pilots}"/done3.txt
