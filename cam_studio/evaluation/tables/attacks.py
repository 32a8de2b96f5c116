"""Which passive-fooling attacks DiffGradCAM resists (beyond the papers): each attack of
``fooling.attacks.ATTACKS`` (the shipped Lite0 SHAM recipe with one change) trained for
``--attack-steps``, then measured against the clean model as the susceptibility table does."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from cam_studio.data.distributed import current
from cam_studio.evaluation.config import EvaluationConfig
from cam_studio.evaluation.rows import key
from cam_studio.evaluation.summaries import describe, write_table
from cam_studio.evaluation.tables.susceptibility import SECONDS_PER_IMAGE, pair_work
from cam_studio.evaluation.work import Load, Progress, Section, Table, Work, image_count
from cams.backbones import CLEAN_WEIGHTS
from cams.errors import Fix, UserInputError
from fooling.attacks import ATTACK_BASE, ATTACKS
from fooling.config import preset
from fooling.train import train

SECONDS_PER_STEP = 0.5  # a Lite0 attack step on the 2-core CPU (the published runs: 198 s / 400)


@dataclass(frozen=True)
class AttackRow:
    table: ClassVar[str] = "attacks"
    attack: str = key()
    checkpoint: str = ""
    steps: int = 0
    train_seconds: float = 0.0
    agreement: float = 0.0
    salience_mse: float = 0.0


def work(config: EvaluationConfig, load: Load) -> Iterator[Work]:
    unknown = [name for name in config.attacks if name not in ATTACKS]
    if unknown:
        raise UserInputError(f"unknown attack {unknown[0]!r}", Fix("attacks", ", ".join(ATTACKS)))
    folder = config.out / "attack-checkpoints"
    for index, attack in enumerate(config.attacks):
        if not current().owns(index):  # under torchrun the runs are shared out whole
            continue
        name = f"attack-{attack}"

        def trained(progress: Progress, attack=attack, name=name) -> list[AttackRow]:
            entry = train(preset(
                ATTACK_BASE, **ATTACKS[attack], name=name, steps=config.attack_steps,
                half=False, val_every=config.attack_steps, val_size=64, directory=str(folder),
                device=config.device, command="python -m cam_studio evaluate (attacks table)"),
                distributed=False)
            final = entry.metadata["metrics"]
            return [AttackRow(attack, name, config.attack_steps, entry.metadata["train_seconds"],
                              final["agreement"], final["salience_mse"])]

        yield Work(AttackRow, (attack,), "attacks", once=trained,
                   position=(index + 1, len(config.attacks)))
        yield pair_work(config, load, CLEAN_WEIGHTS, str(folder / f"{name}.safetensors"),
                        fooled_label=name)


def section(out: Path, rows: list[AttackRow]) -> str:
    table = [[row.attack, describe(ATTACKS.get(row.attack, {})), str(row.steps),
              f"{row.train_seconds:.0f}", f"{row.agreement:.1%}", f"{row.salience_mse:.3f}"]
             for row in rows]
    return "\n".join([write_table(out, "attacks", [
        "attack", f"change from {ATTACK_BASE}", "steps", "train s", "validation agreement",
        "validation GradCAM MSE to SHAM"], table),
        "Each attack's measurement on the images is the `attack-…` line of the susceptibility "
        "overview and its own susceptibility table.\n"])


def seconds(config: EvaluationConfig) -> float:
    runs = len(config.attacks)
    return runs * (config.attack_steps * SECONDS_PER_STEP + SECONDS_PER_IMAGE * image_count(config))


TABLE = Table(
    "attacks", "beyond the papers", (AttackRow,), work,
    Section("Which passive-fooling attacks DiffGradCAM resists",
            f"Each attack is the shipped Lite0 SHAM recipe ({ATTACK_BASE}, fooling/config.py) "
            "with one change, trained here; the recipes were chosen on the validation photos.",
            section),
    seconds, opt_in=True, trains=True)
