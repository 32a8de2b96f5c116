#!/usr/bin/env bash
# Fifth pilots (validation photos only): at β = 2 the SHAM term moved GradCAM (× 0.45) but KL
# alone kept only 56 % of the predictions; keep the pooled features too (the head sees only
# them, so equal pooled features mean equal logits), strongly.
cd "$(dirname "$0")/../../.."
. "${VENV:-.venv}/bin/activate"
export CAMS_CHECKPOINTS="${PILOTS:-/tmp/pilots}/registry" CAMS_OFFLINE=1
run() {
  name=$1; shift
  [ -f "${PILOTS:-/tmp/pilots}/registry"/$name.json ] || python -m cam_studio train --name $name --preset paper-sham \
      --objective kl --data photos:wide --val-size 64 --seed 0 "$@" > "${PILOTS:-/tmp/pilots}"/$name.train.log 2>&1
  python -m cam_studio check $name --photos validation --crops 48 --out docs/results/coverage-pilots > "${PILOTS:-/tmp/pilots}"/$name.check.log 2>&1
}
run pilot-wide-k1-b2-f20 --attack-classes 1 --beta 2 --feature-weight 20 --steps 400 --val-every 400
run pilot-wide-k1-b2-f100 --attack-classes 1 --beta 2 --feature-weight 100 --steps 400 --val-every 400
echo ALLDONE >> "${PILOTS:-/tmp/pilots}"/done5.txt
