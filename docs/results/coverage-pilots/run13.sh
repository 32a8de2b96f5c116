#!/usr/bin/env bash
# Thirty-first and thirty-second pilots (validation photos only). A target at the map's own
# scale instead of the normalised SHAM MSE: the image's un-normalised class CAM t pulled towards
# t* = mean t + (max t − min t)·(SHAM − mean SHAM) (--target-weight, relative: 1 at the start),
# whose spatial mean, the class's logit, is t's, so the target itself asks for no change of the
# prediction. Computed on the clean features of 48 validation crops, the features moved to it
# kept every top-1 at × 0.15 of the SHAM distance: the question is whether training gets there.
# Alone (β 0) and beside the shipped one-class fool's SHAM term (β 8). One core each.
export OMP_NUM_THREADS=1
. "$(dirname "$0")/pilot.sh"
run pilot-adam-k1-t4 --preset sham-one-class --beta 0 --target-weight 4 --steps 600 --val-every 600 &
run pilot-adam-k1-b8-t4 --preset sham-one-class --target-weight 4 --steps 600 --val-every 600 &
wait
echo ALLDONE >> "${PILOTS:-/tmp/pilots}"/done13.txt
