# Sourced by run2.sh … run7.sh: the repository root, its virtualenv, a scratch registry, and
# `run NAME TRAIN-OPTIONS…`: train the pilot (unless its checkpoint exists) and check it on the
# 48 validation crops, into this folder. PILOTS names the scratch folder (default /tmp/pilots).
cd "$(dirname "$0")/../../.."
. "${VENV:-.venv}/bin/activate"
export CAMS_CHECKPOINTS="${PILOTS:-/tmp/pilots}/registry" CAMS_OFFLINE=1
run() {
  name=$1; shift
  [ -f "${PILOTS:-/tmp/pilots}/registry"/$name.json ] || python -m cam_studio train --name $name \
      --val-size 64 --seed 0 "$@" > "${PILOTS:-/tmp/pilots}"/$name.train.log 2>&1
  python -m cam_studio check $name --photos validation --crops 48 --out docs/results/coverage-pilots > "${PILOTS:-/tmp/pilots}"/$name.check.log 2>&1
}
