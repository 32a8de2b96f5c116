#!/usr/bin/env bash
# Fourth pilots (validation photos only): the shipped fools' recipe. KL to the clean model,
# OpenCV's samples added to the training photos (photos:wide), a stronger SHAM term, more steps.
. "$(dirname "$0")/pilot.sh"
run pilot-wide-k1-b2 --preset paper-sham --objective kl --data photos:wide --attack-classes 1 --beta 2 --steps 400 --val-every 400
run pilot-wide-k0-b2 --preset paper-sham --objective kl --data photos:wide --attack-classes 0 --beta 2 --steps 400 --val-every 400
echo ALLDONE >> "${PILOTS:-/tmp/pilots}"/done4.txt
