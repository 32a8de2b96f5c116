#!/usr/bin/env bash
# Second pilots (validation photos only): the full-network CE fine-tune at lr 0.002 lost the
# clean predictions (agreement 2–6 % after 150 steps); try a lower lr, and the last two stages.
. "$(dirname "$0")/pilot.sh"
run pilot-k1-lr0.0005 --preset paper-sham --steps 150 --val-every 150 --attack-classes 1 --lr 0.0005
run pilot-k1-lr0.002-s2 --preset paper-sham --steps 150 --val-every 150 --attack-classes 1 --lr 0.002 --train-stages 2
run pilot-k0-lr0.002-s2 --preset paper-sham --steps 150 --val-every 150 --attack-classes 0 --lr 0.002 --train-stages 2
echo ALLDONE >> "${PILOTS:-/tmp/pilots}"/done2.txt
