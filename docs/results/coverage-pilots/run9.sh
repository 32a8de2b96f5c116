#!/usr/bin/env bash
# Twelfth and thirteenth pilots (validation photos only). run8.sh: β 6 reached × 0.32 at 81 %,
# and twice the steps at β 4 moved GradCAM further (× 0.32) but kept fewer predictions (75 %).
# At a GAP → Linear head the pooled features fix the logits while GradCAM depends on where the
# activations are, so a heavier pooled-feature term (20 → 100, 200) should keep the predictions
# without holding the maps back. The two train side by side, one core each.
export OMP_NUM_THREADS=1
. "$(dirname "$0")/pilot.sh"
run pilot-adam-k0-b6-f100 --preset sham-adam --attack-classes 0 --beta 6 --feature-weight 100 --steps 600 --val-every 600 &
run pilot-adam-k0-b8-f200 --preset sham-adam --attack-classes 0 --beta 8 --feature-weight 200 --steps 600 --val-every 600 &
wait
echo ALLDONE >> "${PILOTS:-/tmp/pilots}"/done9.txt
