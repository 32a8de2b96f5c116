"""Settings written once: the command-line options come from the config dataclass's fields."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from cam_studio.commands.options import add_options, from_options
from cam_studio.commands.runner import OneLineParser
from cams.errors import UserInputError
from fooling.settings import comma_list, setting


def even(text: str) -> int:
    if int(text) % 2:
        raise UserInputError(f"{text} is odd: give an even number")
    return int(text)


@dataclass
class Toy:
    name: str = setting(help="required: no default")
    rate: float = setting(0.5, "a rate")
    size: int | None = setting(None, "a size")
    words: list[str] = setting(help="a comma list", factory=lambda: ["a", "b"], parse=comma_list)
    fast: bool = setting(False, "go fast")
    frozen: bool | None = setting(None, "freeze", off_flag="--thaw")
    pairs: int = setting(2, "an even number", parse=even)
    steps: int | None = setting(None, "steps", group="length")
    epochs: float | None = setting(None, "epochs", group="length")


def parser() -> argparse.ArgumentParser:
    built = OneLineParser(prog="toy")
    add_options(built, Toy)
    return built


def test_only_what_is_given_overrides_the_dataclass_defaults():
    config = from_options(Toy, parser().parse_args(["--name", "x", "--size", "3", "--words",
                                                    "p, q", "--thaw"]))
    assert config == Toy(name="x", size=3, words=["p", "q"], frozen=False)
    assert from_options(Toy, parser().parse_args(["--name", "x"])) == Toy(name="x")
    assert from_options(Toy, parser().parse_args(["--name", "x", "--fast", "--frozen"]),
                        rate=0.1) == Toy(name="x", fast=True, frozen=True, rate=0.1)


def test_help_shows_each_default_once_written():
    text = parser().format_help()
    assert "a rate (default 0.5)" in text and "a comma list (default a,b)" in text
    assert "(default None)" not in text and "go fast (default" not in text


@pytest.mark.parametrize(("argv", "message"), [
    ([], "the following arguments are required: --name"),
    (["--name", "x", "--pairs", "3"], "3 is odd: give an even number"),
    (["--name", "x", "--steps", "2", "--epochs", "1"], "not allowed with argument"),
    (["--name", "x", "--frozen", "--thaw"], "not allowed with argument"),
])
def test_bad_options_are_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as stopped:
        parser().parse_args(argv)
    error = capsys.readouterr().err
    assert stopped.value.code == 2 and message in error and error.count("\n") == 1
