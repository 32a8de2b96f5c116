#!/usr/bin/env bash
# Fifth pilots (validation photos only): at β = 2 the SHAM term moved GradCAM (× 0.45) but KL
# alone kept only 56 % of the predictions; keep the pooled features too (the head sees only
# them, so equal pooled features mean equal logits), strongly.
. "$(dirname "$0")/pilot.sh"
run pilot-wide-k1-b2-f20 --preset paper-sham --objective kl --data photos:wide --attack-classes 1 --beta 2 --feature-weight 20 --steps 400 --val-every 400
run pilot-wide-k1-b2-f100 --preset paper-sham --objective kl --data photos:wide --attack-classes 1 --beta 2 --feature-weight 100 --steps 400 --val-every 400
echo ALLDONE >> "${PILOTS:-/tmp/pilots}"/done5.txt
