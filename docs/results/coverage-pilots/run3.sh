#!/usr/bin/env bash
# Third pilots (validation photos only): CE to the clean top-1 lost the predictions in every
# setting tried (agreement 2–56 %); KL to the clean model (cross-entropy to its soft labels).
. "$(dirname "$0")/pilot.sh"
run pilot-kl-k1 --preset paper-sham --objective kl --steps 150 --val-every 150 --attack-classes 1
run pilot-kl-k0 --preset paper-sham --objective kl --steps 150 --val-every 150 --attack-classes 0
run pilot-kl-k1-s2 --preset paper-sham --objective kl --steps 150 --val-every 150 --attack-classes 1 --train-stages 2
run pilot-kl-k0-s2 --preset paper-sham --objective kl --steps 150 --val-every 150 --attack-classes 0 --train-stages 2
echo ALLDONE >> "${PILOTS:-/tmp/pilots}"/done3.txt
