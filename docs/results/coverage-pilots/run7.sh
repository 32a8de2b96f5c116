#!/usr/bin/env bash
# Seventh to ninth pilots (validation photos only): the shipped fools. sham-adam kept the
# predictions (88 % / 96 %) but GradCAM went only to × 0.60: a stronger SHAM term (β 8) and more
# steps; then β 4 between them for the all-class fool; then, for the one-class fool (β 8 kept
# only 67 % of all crops), a four times heavier prediction-keeping term (α 2).
export OMP_NUM_THREADS=1
. "$(dirname "$0")/pilot.sh"
run pilot-adam-k0-b8 --preset sham-adam --attack-classes 0 --beta 8 --steps 600 --val-every 600
run pilot-adam-k1-b8 --preset sham-adam --attack-classes 1 --beta 8 --steps 600 --val-every 600
run pilot-adam-k0-b4 --preset sham-adam --attack-classes 0 --beta 4 --steps 600 --val-every 600
run pilot-adam-k1-b8-a2 --preset sham-adam --attack-classes 1 --beta 8 --alpha 2 --steps 600 --val-every 600
echo ALLDONE >> "${PILOTS:-/tmp/pilots}"/done7.txt
