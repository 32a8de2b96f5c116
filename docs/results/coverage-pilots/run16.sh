#!/usr/bin/env bash
# Sixteenth pilots (validation photos only, 2026-12-08): the all-class recipe with the steered
# images (run15.sh) and a four times heavier KL term (α 2, as the one-class fool's), at β 4 and
# at β 6: with images near every class's boundary in every batch, does a heavier
# prediction-keeping term buy the predictions back at less cost to the maps than on the photos
# alone? `run16.sh b6` trains the second.
export OMP_NUM_THREADS=1
. "$(dirname "$0")/pilot.sh"
if [ "${1:-b4}" = b4 ]; then
  run pilot-steer-k0-b4-a2 --preset sham-all-classes --steered 1024 --alpha 2
else
  run pilot-steer-k0-b6-a2 --preset sham-all-classes --steered 1024 --alpha 2 --beta 6
fi
