#!/usr/bin/env bash
# Fourteenth pilots (validation photos only, 2026-12-08): the passive feature target
# (--blend-weight). Its target keeps every channel's spatial mean, so every logit, by
# construction; the fine-tune is asked to reach it, with and without the SHAM term. First for
# every class at once (ρ 0.7), then along the image's own class row only (ρ 1), then (`run14.sh
# fit`) the every-class target four times heavier and at three times the learning rate, at
# ρ 0.7 and 0.5.
export OMP_NUM_THREADS=1
. "$(dirname "$0")/pilot.sh"
if [ "${1:-every}" = every ]; then
  run pilot-blend-w4-b0 --preset sham-adam --beta 0 --blend-weight 4 --steps 400 --val-every 100
  run pilot-blend-k0-b4-w4 --preset sham-adam --attack-classes 0 --beta 4 --blend-weight 4 --steps 400 --val-every 100
elif [ "$1" = fit ]; then
  run pilot-blend-w16-b0-lr3e-4 --preset sham-adam --beta 0 --blend-weight 16 --lr 0.0003 --steps 400 --val-every 100
  run pilot-blend-w16-b0-lr3e-4-r0.5 --preset sham-adam --beta 0 --blend-weight 16 --blend-strength 0.5 --lr 0.0003 --steps 400 --val-every 100
else
  run pilot-blend-own-w4-b0 --preset sham-adam --beta 0 --blend-weight 4 --blend-direction own --blend-strength 1 --steps 400 --val-every 100
  run pilot-blend-own-k1-b8-a2-w4 --preset sham-adam --attack-classes 1 --beta 8 --alpha 2 --blend-weight 4 --blend-direction own --blend-strength 1 --steps 400 --val-every 100
fi
