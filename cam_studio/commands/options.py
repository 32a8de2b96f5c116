"""The command line's flags: options built from a config's settings (``fooling.settings.setting``
fields: each setting's default and help is written once, on the config), and the errors' fixes
worded as flags (``cli_words``).

    add_options(parser, TrainConfig)               # --lr, help "SGD learning rate (default 0.002)"
    config = from_options(TrainConfig, arguments)  # only the options given override the defaults
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cams.errors import (
    BACKBONE,
    BATCH_SIZE,
    CLASS_NAMES,
    DEVICE,
    FALSE_CLASS,
    IMAGES,
    INPUT_SIZE,
    LAYER,
    MEAN,
    METHODS,
    STD,
    TARGET,
    WEIGHTS,
    Fix,
    UserInputError,
)
from fooling.settings import MISSING


def _default_text(field: dataclasses.Field) -> str:
    if field.metadata["shown"]:
        return f" (default {field.metadata['shown']})"
    if field.default is not MISSING:
        value = field.default
    elif field.default_factory is not MISSING:
        value = field.default_factory()
    else:
        return ""
    if value is None or value is False or value == "" or (isinstance(value, list) and not value):
        return ""
    if isinstance(value, list):
        value = ",".join(map(str, value))
    return f" (default {value})"


def flag_of(config: type, name: str) -> str:
    """The command-line flag of ``config``'s field ``name`` (``--field-name`` unless renamed)."""
    field = {field.name: field for field in dataclasses.fields(config)}[name]
    return field.metadata.get("flag") or f"--{name.replace('_', '-')}"


def add_options(parser: argparse.ArgumentParser, config: type) -> None:
    """One option per field of ``config`` declared with ``setting``. Options default to None, so
    ``from_options`` can tell what the user gave."""
    hints = typing.get_type_hints(config)
    groups: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for field in dataclasses.fields(config):
        meta = field.metadata
        if "help" not in meta:
            continue
        target = parser
        if meta["group"]:
            if meta["group"] not in groups:
                groups[meta["group"]] = parser.add_mutually_exclusive_group()
            target = groups[meta["group"]]
        flag = flag_of(config, field.name)
        required = field.default is MISSING and field.default_factory is MISSING
        kind = hints[field.name]
        if kind in (bool, bool | None) and not meta["parse"]:
            if meta["off_flag"]:
                both = target.add_mutually_exclusive_group() if target is parser else target
                both.add_argument(flag, dest=field.name, action="store_const", const=True,
                                  help=meta["help"])
                both.add_argument(meta["off_flag"], dest=field.name, action="store_const",
                                  const=False, help=f"the opposite of {flag}")
            else:
                target.add_argument(flag, dest=field.name, action="store_const", const=True,
                                    help=meta["help"])
            continue
        parse = _option_type(meta["parse"]) if meta["parse"] else _scalar_parser(kind)
        target.add_argument(flag, dest=field.name, type=parse, choices=meta["choices"],
                            required=required, help=meta["help"] + _default_text(field))
        for alias in meta["aliases"]:
            target.add_argument(alias, dest=field.name, type=parse, choices=meta["choices"],
                                help=argparse.SUPPRESS)


def _option_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse`` for argparse: its UserInputError becomes argparse's one-line usage error."""
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except UserInputError as error:
            raise argparse.ArgumentTypeError(error.worded(cli_words)) from error
    return convert


def _scalar_parser(kind: Any) -> Callable[[str], Any]:
    for candidate in (int, float, Path):
        if kind in (candidate, candidate | None):
            return candidate
    return str


def given_values(config: type, arguments: argparse.Namespace) -> dict[str, Any]:
    """The fields of ``config`` the command line set (options left out are None)."""
    return {field.name: getattr(arguments, field.name) for field in dataclasses.fields(config)
            if "help" in field.metadata and getattr(arguments, field.name, None) is not None}


def from_options(config: type, arguments: argparse.Namespace, **values: Any) -> Any:
    """``config`` built from the options given on the command line (the others keep the
    field's default), plus ``values``."""
    return config(**{**given_values(config, arguments), **values})


# The engine's inputs as this command line's flags (and what follows each flag).
FLAGS = {BACKBONE: ("--backbone", "NAME"), WEIGHTS: ("--weights", "FILE"),
         LAYER: ("--layer", "MODULE"), INPUT_SIZE: ("--input-size", "PIXELS"),
         MEAN: ("--mean", "R G B"), STD: ("--std", "R G B"),
         CLASS_NAMES: ("--class-names", "FILE"), TARGET: ("--target", "CLASS"),
         FALSE_CLASS: ("--false-class", "CLASS"), METHODS: ("--methods", "NAMES"),
         DEVICE: ("--device", "DEVICE"), BATCH_SIZE: ("--batch-size", "N"),
         IMAGES: ("--example", "NAME"), "resume": ("--resume", "")}


def setting_flag(name: str) -> tuple[str, str] | None:
    """The flag of a training or evaluation setting called ``name`` (``fooling.settings``)."""
    from cam_studio.evaluation.config import EvaluationConfig
    from fooling.config import TrainConfig
    for config in (TrainConfig, EvaluationConfig):
        if name in config.__dataclass_fields__:
            return flag_of(config, name), name.upper()
    return None


def cli_words(fix: Fix) -> str:
    """A fix as this command line says it: ``pass --weights FILE (a .safetensors file)``."""
    flag = FLAGS.get(fix.input) or (setting_flag(fix.input) if fix.input else None)
    if flag is None:
        return fix.neutral()
    option, metavar = flag
    if fix.value is not None:
        return f"pass {option} {fix.value}" + (f" ({fix.detail})" if fix.detail else "")
    return f"pass {' '.join(filter(None, (option, metavar)))}" + (
        f" ({fix.detail})" if fix.detail else "")
