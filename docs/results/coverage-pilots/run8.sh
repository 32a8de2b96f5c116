#!/usr/bin/env bash
# Tenth and eleventh pilots (validation photos only): can the all-class fool meet issue 20's
# acceptance (≥ 90 % of all crops, ≥ 98 % of the confident ones, GradCAM ≤ × 0.4 of its clean
# distance to the SHAM)? β 4 reached × 0.39 at 85 %, β 8 × 0.28 at 79 % (run7.sh): β 6 between
# them, and β 4 for twice the steps (does a longer run keep more predictions at the same pull?).
# The two train side by side, one core each.
export OMP_NUM_THREADS=1
. "$(dirname "$0")/pilot.sh"
run pilot-adam-k0-b6 --preset sham-adam --attack-classes 0 --beta 6 --steps 600 --val-every 600 &
run pilot-adam-k0-b4-1200 --preset sham-adam --attack-classes 0 --beta 4 --steps 1200 --val-every 1200 &
wait
echo ALLDONE >> "${PILOTS:-/tmp/pilots}"/done8.txt
