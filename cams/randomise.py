"""Model-parameter randomisation (Adebayo et al. 2018, "Sanity Checks for Saliency Maps"): re-draw
the weights of a model's blocks, from the top down (cascading) or one block alone (independent),
so that a map that does not change shows it ignores what the model learned.

A model's blocks are its children that hold parameters, in the order they are registered (the
order of the forward pass for timm and torchvision models), with a ``Sequential`` or
``ModuleList`` of blocks (timm's ``blocks``, torchvision's ``features``) opened one level.
Re-drawing a block calls ``reset_parameters`` of every module in it that has one (the modules'
own initialisation, as Quantus does; a batch norm goes back to identity statistics) and draws any
other parameter of it from N(0, 0.02²); the model's own parameters (a vision transformer's class
token and position embedding) count as part of its first block. Each block is re-drawn from a
seed of its own (``seed``, the block's index), so block k holds the same random weights in the
cascading and the independent test and on every call.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from cams.errors import WEIGHTS, Fix, UserInputError

CASCADING, INDEPENDENT = "cascading", "independent"
OTHER_PARAMETER_STD = 0.02  # a parameter no reset_parameters owns (as timm's ViT inits them)


def blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's blocks, bottom (input) first: ``(name, module)``."""
    found = []
    for name, child in model.named_children():
        if next(child.parameters(), None) is None:
            continue
        inner = [(f"{name}.{sub}", module) for sub, module in child.named_children()
                 if next(module.parameters(), None) is not None]
        if isinstance(child, (nn.Sequential, nn.ModuleList)) and len(inner) > 1:
            found.extend(inner)
        else:
            found.append((name, child))
    if not found:
        raise UserInputError(f"{type(model).__name__} has no blocks with parameters to randomise",
                             Fix(WEIGHTS, "a model with parameters"))
    return found


def block_names(model: nn.Module) -> list[str]:
    """The names of ``blocks(model)``, top (output) first: the cascading test's order."""
    return [name for name, _ in reversed(blocks(model))]


def randomised_blocks(model: nn.Module, block: str, test: str = CASCADING) -> list[str]:
    """The blocks a test re-draws at ``block``: for ``cascading`` every block from the top down to
    ``block``, for ``independent`` ``block`` alone."""
    names = block_names(model)
    if block not in names:
        raise UserInputError(f"{type(model).__name__} has no block {block!r}",
                             Fix(WEIGHTS, f"one of {', '.join(names)}"))
    if test not in (CASCADING, INDEPENDENT):
        raise UserInputError(f"no randomisation test {test!r}",
                             Fix(WEIGHTS, f"{CASCADING} or {INDEPENDENT}"))
    return names[:names.index(block) + 1] if test == CASCADING else [block]


@torch.no_grad()
def _redraw(module: nn.Module, seed: int, own: list[nn.Parameter]) -> None:
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        torch.default_generator.manual_seed(seed)
        owned = set()
        for inner in module.modules():
            if callable(getattr(inner, "reset_parameters", None)):
                inner.reset_parameters()
                owned.update(id(p) for p in inner.parameters())
        for parameter in [*module.parameters(), *own]:
            if id(parameter) not in owned:
                parameter.copy_(torch.randn(parameter.shape) * OTHER_PARAMETER_STD)


def randomise(model: nn.Module, block: str, test: str = CASCADING, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with the blocks ``randomised_blocks(model, block, test)`` re-drawn
    (seeded: block k of seed s holds the same weights in every test); ``model`` is unchanged."""
    names = randomised_blocks(model, block, test)
    device = next(model.parameters()).device
    # Drawn on the CPU (its generator alone is seeded: the same weights on every device).
    copied = copy.deepcopy(model).cpu()
    modules = dict(copied.named_modules())
    own = list(copied.parameters(recurse=False))
    for index, (name, _) in enumerate(blocks(copied)):
        if name in names:
            _redraw(modules[name], seed * 1000 + index, own if index == 0 else [])
    return copied.to(device)


def randomised_name(block: str, test: str = CASCADING, seed: int = 0) -> str:
    """The weights name of a randomised model (``load_backbone(weights=...)``): e.g.
    ``randomised:blocks.6`` (cascading, seed 0), ``randomised-only:conv_head:2``."""
    prefix = "randomised" if test == CASCADING else "randomised-only"
    return f"{prefix}:{block}" + (f":{seed}" if seed else "")


def parse_randomised(text: str) -> tuple[str, str, int] | None:
    """``randomised[-only]:BLOCK[:SEED]`` → (block, test, seed); None for any other weights."""
    prefix, sep, rest = text.partition(":")
    if not sep or prefix not in ("randomised", "randomised-only"):
        return None
    block, _, seed = rest.partition(":")
    if not block or (seed and not seed.isdigit()):
        raise UserInputError(f"weights {text!r} are not randomised[-only]:BLOCK[:SEED]",
                             Fix(WEIGHTS, "e.g. randomised:classifier or randomised-only:blocks.3:1"))
    return block, CASCADING if prefix == "randomised" else INDEPENDENT, int(seed or 0)


def describe(block: str, test: str, seed: int, names: Sequence[str]) -> str:
    """Where a randomised model's weights come from, for display."""
    what = (f"randomised from the top down to {block} ({len(names)} blocks)"
            if test == CASCADING else f"{block} alone randomised")
    return f"pretrained weights, {what}, seed {seed}"


def record(block: str, test: str, seed: int, names: Sequence[str]) -> dict:
    """A randomised model's metadata (``Backbone.metadata["randomised"]``)."""
    return {"block": block, "test": test, "seed": seed, "blocks": list(names)}


def redrawn(model: nn.Module, block: str, test: str = CASCADING,
            seed: int = 0) -> tuple[nn.Module, str, dict]:
    """``randomise(model, block, test, seed)`` with where its weights come from (for display)
    and its metadata record."""
    names = randomised_blocks(model, block, test)
    return (randomise(model, block, test, seed), describe(block, test, seed, names),
            record(block, test, seed, names))
