#!/usr/bin/env bash
# Fifteenth pilots (validation photos only, 2026-12-08): the shipped fools' recipes with half of
# every batch made of 1024 images steered towards each class in turn (--steered 1024: training
# crops moved 6 Adam steps towards one class each by the clean model), so the prediction-keeping
# term sees every class's boundary (interpolation.py found the fools' lost crops among classes
# no training crop shows). The first run makes the steered images (about 8 minutes on 2 cores;
# cached, CAMS_CACHE or ~/.cache/cam-studio); `run15.sh one` trains the one-class recipe.
export OMP_NUM_THREADS=1
. "$(dirname "$0")/pilot.sh"
if [ "${1:-all}" = all ]; then
  run pilot-steer-k0-b4 --preset sham-all-classes --steered 1024
else
  run pilot-steer-k1-b8-a2 --preset sham-one-class --steered 1024
fi
