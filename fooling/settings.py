"""Settings written once: a config dataclass field carries its default and its help (and, for the
command line, its flag); the command lines build their options from it and the app's tabs build
the same config objects.

    @dataclass
    class TrainConfig:
        lr: float = setting(0.002, "SGD learning rate")
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

MISSING = dataclasses.MISSING


def setting(default: Any = MISSING, help: str = "", *, factory: Callable[[], Any] | None = None,
            flag: str | None = None, off_flag: str | None = None,
            choices: tuple[str, ...] | None = None, parse: Callable[[str], Any] | None = None,
            group: str | None = None, shown: str | None = None,
            aliases: tuple[str, ...] = ()) -> Any:
    """A dataclass field that is also a command-line option.

    ``flag`` overrides ``--field-name``; ``off_flag`` gives a tri-state boolean a second flag that
    sets it False (unset = None, the config decides); ``parse`` turns the option's text into the
    value (e.g. a comma list; a ``UserInputError`` it raises is the usage error's message);
    fields sharing a ``group`` are mutually exclusive options; ``shown`` is how the help writes
    the default; ``aliases`` are older names of the flag that still work (not shown in the help).
    """
    metadata = {"help": help, "flag": flag, "off_flag": off_flag, "choices": choices,
                "parse": parse, "group": group, "shown": shown, "aliases": aliases}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def comma_list(text: str) -> list[str]:
    """``"a, b,c"`` → ``["a", "b", "c"]``."""
    return [part.strip() for part in text.split(",") if part.strip()]
