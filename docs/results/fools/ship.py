"""Ship a fool chosen on the validation photos: copy its registry checkpoint under the name it
ships as, its floating tensors stored as float16 (half the size; loading casts back), its
metadata kept (recipe, validation history, training time) with where it came from.

    CAMS_CHECKPOINTS=PILOT_REGISTRY python docs/results/fools/ship.py PILOT NAME assets/checkpoints

The same recipe retrained with ``--half`` gives these weights (training is seeded); the copy
saves retraining. The shipped file is what ``python -m cam_studio check NAME`` then measures on
the test photos.
"""

from __future__ import annotations

import sys
from pathlib import Path

from safetensors.torch import load_file

from cams.checkpoints import find_checkpoint, save_checkpoint

FILE_FACTS = {"format", "name", "weights", "weights_bytes", "weights_sha256", "dtype", "created"}


def ship(pilot: str, name: str, directory: Path) -> None:
    entry = find_checkpoint(pilot)
    metadata = {key: value for key, value in entry.metadata.items() if key not in FILE_FACTS}
    metadata["shipped_from"] = f"{pilot} (validation pilot, float32), stored as float16"
    saved = save_checkpoint(load_file(str(entry.weights_path)), metadata, name, directory,
                            half=True)
    print(f"shipped {pilot} as {saved.name}: {saved.weights_path}")


if __name__ == "__main__":
    ship(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
