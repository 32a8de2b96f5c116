#!/usr/bin/env bash
# Fourteenth and fifteenth pilots (validation photos only). run9.sh: the feature term at 100 kept
# 88 % of the predictions at × 0.60. Does a stronger SHAM term against it (β 12 with 100; β 16
# with 200) move GradCAM further while the feature term keeps the predictions? Side by side, one
# core each.
export OMP_NUM_THREADS=1
. "$(dirname "$0")/pilot.sh"
run pilot-adam-k0-b12-f100 --preset sham-adam --attack-classes 0 --beta 12 --feature-weight 100 --steps 600 --val-every 600 &
run pilot-adam-k0-b16-f200 --preset sham-adam --attack-classes 0 --beta 16 --feature-weight 200 --steps 600 --val-every 600 &
wait
echo ALLDONE >> "${PILOTS:-/tmp/pilots}"/done10.txt
