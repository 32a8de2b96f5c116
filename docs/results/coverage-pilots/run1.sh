#!/usr/bin/env bash
# Pilot recipes for the coverage experiment, chosen on the VALIDATION photos only.
cd "$(dirname "$0")/../../.."
. "${VENV:-.venv}/bin/activate"
export CAMS_CHECKPOINTS="${PILOTS:-/tmp/pilots}/registry" CAMS_OFFLINE=1
for lr in 0.002 0.01; do
  for k in 1 0; do
    name=pilot-k$k-lr$lr
    [ -f "${PILOTS:-/tmp/pilots}/registry"/$name.json ] || python -m cam_studio train --name $name --backbone efficientnet_lite0 \
      --loss sham --data photos --objective ce --steps 150 --batch-size 16 --lr $lr \
      --attack-classes $k --val-size 64 --val-every 150 --seed 0 > "${PILOTS:-/tmp/pilots}"/$name.train.log 2>&1
    python -m cam_studio check $name --photos validation --crops 48 --out docs/results/coverage-pilots > "${PILOTS:-/tmp/pilots}"/$name.check.log 2>&1
  done
done
echo ALLDONE >> "${PILOTS:-/tmp/pilots}"/done.txt
