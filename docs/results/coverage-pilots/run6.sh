#!/usr/bin/env bash
# Sixth pilots (validation photos only): SGD traded agreement for fooling along one curve
# (β 2: agreement 56 %, × 0.45; feature term 20: 71 %, × 0.59; 100 diverged). Adam at a
# fine-tuning learning rate, with the feature term, the image's class (k 1) and every class.
. "$(dirname "$0")/pilot.sh"
run pilot-adam-k1-b2-f20 --preset paper-sham --objective kl --data photos:wide --optimizer adam --lr 0.0001 --attack-classes 1 --beta 2 --feature-weight 20 --steps 400 --val-every 400
run pilot-adam-k0-b2-f20 --preset paper-sham --objective kl --data photos:wide --optimizer adam --lr 0.0001 --attack-classes 0 --beta 2 --feature-weight 20 --steps 400 --val-every 400
echo ALLDONE >> "${PILOTS:-/tmp/pilots}"/done6.txt
