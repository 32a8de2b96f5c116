#!/usr/bin/env bash
# Eighteenth and nineteenth pilots (validation photos only). run11.sh: matching every class's
# centred logit at 0.05 kept 97.9 % of the predictions and held GradCAM still (× 0.98). Is there a
# point between it and the KL-only front (a ten times lighter term, 0.005), and does a four times
# stronger SHAM term (β 16) move the maps while the scores are held at 0.05? One core each.
export OMP_NUM_THREADS=1
. "$(dirname "$0")/pilot.sh"
run pilot-adam-k0-b4-l0.005 --preset sham-all-classes --logit-weight 0.005 --steps 600 --val-every 600 &
run pilot-adam-k0-b16-l0.05 --preset sham-all-classes --beta 16 --logit-weight 0.05 --steps 600 --val-every 600 &
wait
echo ALLDONE >> "${PILOTS:-/tmp/pilots}"/done12.txt
