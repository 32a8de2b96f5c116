"""Target layers: where the engine reads the activations ``A`` (N×K×h×w) and differentiates to.

A target layer is either
- the ``features`` seam of a timm model: ``forward_features(x)`` is the layer and
  ``forward_head`` the rest (CNNs; channels-last features such as Swin's are permuted), or
- any module of the model, named by its path (``blocks.11.norm1``, ``layer4``): read during one
  full forward pass by a forward hook that re-roots the module's output on ``A``, so that the
  logits depend on ``A`` and one VJP reaches it. Transformers (tokens N×L×C: the class and
  distillation tokens are dropped, the grid is inferred), torchvision CNNs, and any block a user
  picks go this way.

The default layer follows pytorch-grad-cam's documented choice: for a timm CNN the features seam;
for a transformer (a model with attention and ``norm1`` layers: ViT, DeiT, Swin, hybrids with a
token trunk) the last block's ``norm1``, because the final class token alone carries no spatial
gradient; for any other model the last module whose output is a feature map (h·w > 1).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from cams.errors import INPUT_SIZE, LAYER, Fix, UserInputError
from cams.folding import folded

FEATURES = "forward_features"  # the forward_features → forward_head seam of a timm model
NCHW, NHWC, TOKENS = "NCHW", "NHWC", "tokens"
# The layer of a transformer block pytorch-grad-cam documents (timm's norm1; torchvision's ViT
# calls it ln_1), and the names of the attention module that marks a transformer block.
TOKEN_LAYERS = ("norm1", "ln_1")
ATTENTION = ("attn", "self_attention")
MAX_PREFIX_TOKENS = 8  # class, distillation and register tokens before the spatial ones


@dataclass(frozen=True)
class TargetLayer:
    """Where the activations are read: a module path (or ``FEATURES``), the layout of its output
    (NCHW, NHWC or tokens) and, for tokens, how many non-spatial tokens lead (class,
    distillation, registers)."""

    name: str
    layout: str
    prefix_tokens: int = 0

    def to_grid(self, output: Tensor, input_hw: tuple[int, int]) -> Tensor:
        """The layer's output as N×K×h×w."""
        if self.layout == NCHW:
            return output
        if self.layout == NHWC:
            return output.permute(0, 3, 1, 2)
        n, length, channels = output.shape
        height, width = token_grid(length - self.prefix_tokens, input_hw, self.name)
        return output[:, self.prefix_tokens:].transpose(1, 2).reshape(n, channels, height, width)

    def from_grid(self, grid: Tensor, output: Tensor) -> Tensor:
        """The layer's output rebuilt from ``grid`` (and the output's prefix tokens)."""
        if self.layout == NCHW:
            return grid
        if self.layout == NHWC:
            return grid.permute(0, 2, 3, 1)
        tokens = grid.flatten(2).transpose(1, 2)
        return torch.cat([output[:, :self.prefix_tokens], tokens], dim=1)


def grid_of(spatial: int, input_hw: tuple[int, int]) -> tuple[int, int] | None:
    """The h×w grid, of about the input's aspect ratio, that ``spatial`` tokens fill; None if
    there is none."""
    height = max(1, round(math.sqrt(spatial * input_hw[0] / input_hw[1])))
    width = spatial // height
    if height * width != spatial or abs(height / width - input_hw[0] / input_hw[1]) >= 0.2:
        return None
    return height, width


def token_grid(spatial: int, input_hw: tuple[int, int], name: str) -> tuple[int, int]:
    """The h×w grid of ``spatial`` tokens of an input of ``input_hw``, or a one-line error."""
    grid = grid_of(spatial, input_hw)
    if grid is None:
        raise UserInputError(f"layer {name} has {spatial} spatial tokens, which is no grid of an "
                             f"{input_hw[0]}×{input_hw[1]} input", Fix(LAYER, "another layer"))
    return grid


def find_module(model: nn.Module, name: str) -> nn.Module:
    """The module at path ``name``, or a one-line error listing some that exist."""
    modules = dict(model.named_modules())
    if name in modules and name:
        return modules[name]
    blocks = [key for key in modules if key.endswith(TOKEN_LAYERS)][-3:] or list(modules)[-3:]
    raise UserInputError(f"the model has no layer {name!r}",
                         Fix(LAYER, f"a module path such as {', '.join(blocks)}, or "
                                    f"{FEATURES!r} for a timm CNN's features"))


def token_layers(model: nn.Module) -> list[str]:
    """The ``norm1`` layers of a model's attention blocks (ViT, DeiT, Swin, hybrids, torchvision's
    ViT and Swin …), in order; empty for a model without attention."""
    leaves = [name.rsplit(".", 1)[-1] for name, _ in model.named_modules()]
    if not any(leaf in ATTENTION for leaf in leaves):
        return []
    return [name for name, _ in model.named_modules() if name.rsplit(".", 1)[-1] in TOKEN_LAYERS]


def has_features_seam(model: nn.Module) -> bool:
    return callable(getattr(model, "forward_features", None)) and callable(
        getattr(model, "forward_head", None))


def rooted(layer: TargetLayer, output: Tensor, input_hw: tuple[int, int], *,
           graph_below: bool, needs_graph: bool) -> tuple[Tensor, Tensor]:
    """The layer's output as the grid ``A`` and the output rebuilt from it (what the rest of the
    model runs on, so that the logits depend on ``A``). ``A`` is a leaf (requiring grad when
    ``needs_graph``) unless ``graph_below`` and it has a graph to keep (features that are not
    frozen)."""
    grid = layer.to_grid(output, input_hw)
    if not graph_below or not grid.requires_grad:
        grid = grid.detach().requires_grad_(needs_graph)
        output = output.detach()
    return grid, layer.from_grid(grid, output)


@contextmanager
def tapped(model: nn.Module, layer: TargetLayer, input_hw: tuple[int, int], *,
           graph_below: bool, needs_graph: bool) -> Iterator[dict[str, Tensor]]:
    """During the block, forward passes of this thread through ``model`` store the layer's
    activations as ``A`` in the yielded dict, N×K×h×w, with the logits depending on them: detached
    from the graph below unless ``graph_below``, and requiring grad when ``needs_graph``. Other
    threads' passes through the same model are untouched (the hook checks the thread)."""
    store: dict[str, Tensor] = {}
    owner = threading.get_ident()

    def hook(module: nn.Module, args: tuple, output: Tensor) -> Tensor | None:
        if threading.get_ident() != owner or "A" in store:
            return None
        store["A"], rebuilt = rooted(layer, output, input_hw, graph_below=graph_below,
                                     needs_graph=needs_graph)
        return rebuilt

    handle = find_module(model, layer.name).register_forward_hook(hook)
    try:
        yield store
    finally:
        handle.remove()


def forward_layer(model: nn.Module, layer: TargetLayer, inputs: Tensor, *,
                  graph_below: bool = False, needs_graph: bool = True) -> tuple[Tensor, Tensor]:
    """One forward pass: the layer's activations ``A`` (N×K×h×w) and the logits.

    With ``needs_graph`` the logits carry a graph back to ``A`` (a leaf, unless ``graph_below``:
    then ``A`` keeps its graph to the parameters, for differentiable maps).
    """
    input_hw = (int(inputs.shape[-2]), int(inputs.shape[-1]))
    if layer.name != FEATURES:
        with torch.set_grad_enabled(needs_graph or graph_below), tapped(
                model, layer, input_hw, graph_below=graph_below, needs_graph=needs_graph) as store:
            logits = model(inputs)
        return store["A"], logits
    if graph_below:
        with torch.enable_grad():
            output = model.forward_features(inputs)
    else:
        with torch.inference_mode():  # no graph below: the batch norms folded (cams.folding)
            output = folded(model, inputs).forward_features(inputs)
        # A clone made outside inference mode is an ordinary tensor the head can record on.
        output = output.clone()
    grid, rebuilt = rooted(layer, output, input_hw, graph_below=graph_below,
                           needs_graph=needs_graph)
    with torch.set_grad_enabled(needs_graph or graph_below):
        logits = model.forward_head(rebuilt)
    return grid, logits


def logits_from(model: nn.Module, layer: TargetLayer, images: Tensor, grids: Tensor) -> Tensor:
    """The logits with the layer's output replaced by ``grids`` (M×K×h×w): of one image
    (1×3×H×W) under each grid (e.g. the activations with a channel ablated), or of M images each
    under its own; M×C, differentiable in ``grids``. At the features seam only the head runs
    again; at a named module the whole model runs, the module's output swapped by a hook (this
    thread's passes only)."""
    if layer.name == FEATURES:
        output = None
        if layer.layout not in (NCHW, NHWC):  # tokens: the prefix tokens come from the output
            with torch.inference_mode():
                output = model.forward_features(images)
            output = output.clone().expand(len(grids), *output.shape[1:]) if len(images) == 1 \
                else output.clone()
        return model.forward_head(layer.from_grid(grids, output))
    owner = threading.get_ident()

    def hook(module: nn.Module, args: tuple, output: Tensor) -> Tensor | None:
        if threading.get_ident() != owner:
            return None
        return layer.from_grid(grids, output)

    handle = find_module(model, layer.name).register_forward_hook(hook)
    try:
        return model(images.expand(len(grids), *images.shape[1:]) if len(images) == 1 else images)
    finally:
        handle.remove()


@torch.inference_mode()
def logits_with(model: nn.Module, layer: TargetLayer, images: Tensor, grids: Tensor) -> Tensor:
    """``logits_from`` without a graph (the ablated passes)."""
    return logits_from(model, layer, images, grids)


def allow_double_backward(model: nn.Module) -> int:
    """Switch timm's attention blocks from the fused kernel (whose backward PyTorch cannot
    differentiate again) to their explicit maths, for differentiable maps (training): the same
    function, a little slower. Returns how many blocks were switched."""
    switched = 0
    for module in model.modules():
        if getattr(module, "fused_attn", False):
            module.fused_attn = False
            switched += 1
    return switched


def _prefix_tokens(model: nn.Module, length: int, input_hw: tuple[int, int]) -> int:
    """timm's ``num_prefix_tokens``, else the fewest leading tokens that leave a grid of the
    input's aspect ratio (torchvision's ViT: its one class token)."""
    known = getattr(model, "num_prefix_tokens", None)
    if isinstance(known, int):
        return known
    for prefix in range(min(MAX_PREFIX_TOKENS, length - 1) + 1):
        if grid_of(length - prefix, input_hw) is not None:
            return prefix
    raise UserInputError(f"cannot tell which of the {length} tokens are spatial",
                         Fix(LAYER, "a layer whose output is a feature map"))


def _layout(model: nn.Module, name: str, output: Tensor,
            input_hw: tuple[int, int]) -> TargetLayer:
    if output.ndim == 3:
        return TargetLayer(name, TOKENS, _prefix_tokens(model, output.shape[1], input_hw))
    if output.ndim != 4:
        raise UserInputError(f"layer {name} gives shape {tuple(output.shape)}, which is neither "
                             "a feature map (N×C×H×W or N×H×W×C) nor tokens (N×L×C)",
                             Fix(LAYER, "another layer"))
    module = model if name == FEATURES else find_module(model, name)
    normalised = getattr(module, "normalized_shape", None)  # a LayerNorm over the last dim
    channels_last = (getattr(model, "output_fmt", NCHW) == NHWC if name == FEATURES
                     else normalised is not None and tuple(normalised)[-1] == output.shape[-1])
    return TargetLayer(name, NHWC if channels_last and output.shape[1] != output.shape[-1]
                       else NCHW)


def _last_feature_map(model: nn.Module, sample: Tensor) -> str:
    """The last module (in the order they finish) whose output is an N×C×H×W map with H·W > 1,
    pooling layers aside (a CNN's last stage, e.g. torchvision's ``layer4`` or ``features``)."""
    finished: list[str] = []
    handles = [module.register_forward_hook(
        lambda module, args, output, name=name: finished.append(name)
        if isinstance(output, Tensor) and output.ndim == 4 and output.shape[-1] * output.shape[-2] > 1
        else None) for name, module in model.named_modules()
        if name and "Pool" not in type(module).__name__]
    try:
        with torch.no_grad():
            model(sample)
    finally:
        for handle in handles:
            handle.remove()
    if not finished:
        raise UserInputError("the model has no layer with a spatial output (N×C×H×W)",
                             "give a CNN or a vision transformer")
    return finished[-1]


def default_layer_name(model: nn.Module, sample: Tensor) -> str:
    """pytorch-grad-cam's documented choice (see the module docstring): a timm model whose
    features are an N×C×H×W map (CNNs, and hybrids that end in convolutions such as MobileViT) is
    read at its seam; a transformer at its last block's ``norm1``; any other timm model (tokens at
    the seam: MLP-Mixer, LeViT) at its seam; anything else at its last feature map."""
    seam = has_features_seam(model)
    if seam and getattr(model, "output_fmt", NCHW) == NCHW:
        with torch.no_grad():
            if model.forward_features(sample).ndim == 4:
                return FEATURES
    if token_layers(model):
        return token_layers(model)[-1]
    return FEATURES if seam else _last_feature_map(model, sample)


def resolve_layer(model: nn.Module, input_size: tuple[int, int, int],
                  name: str | None = None) -> tuple[TargetLayer, tuple[int, int, int]]:
    """The target layer ``name`` (default: ``default_layer_name``) of ``model`` and the shape
    K×h×w of its activations, from one forward pass of zeros of ``input_size`` (C×H×W)."""
    device = next(model.parameters()).device
    sample = torch.zeros(1, *input_size, device=device)
    name = name or default_layer_name(model, sample)
    if name == FEATURES and not has_features_seam(model):
        raise UserInputError("this model has no forward_features/forward_head seam",
                             Fix(LAYER, "a module path, e.g. layer4"))
    seen: list[Tensor] = []
    module = model if name == FEATURES else find_module(model, name)
    handle = None if name == FEATURES else module.register_forward_hook(
        lambda m, a, output: seen.append(output))
    try:
        with torch.no_grad():
            seen.append(model.forward_features(sample)) if name == FEATURES else model(sample)
    except (RuntimeError, AssertionError, ValueError) as error:  # what models raise on sizes
        detail = str(error).strip().splitlines()[0][:120] if str(error).strip() else ""
        raise UserInputError(f"the model does not run on {input_size[1]}×{input_size[2]} inputs "
                             f"({detail})", Fix(INPUT_SIZE, "the size it was built for")) from error
    finally:
        if handle is not None:
            handle.remove()
    if not seen or not isinstance(seen[0], Tensor):
        raise UserInputError(f"layer {name} does not output one tensor during the forward pass",
                             Fix(LAYER, "another layer"))
    layer = _layout(model, name, seen[0], tuple(input_size[-2:]))
    grid = layer.to_grid(seen[0], tuple(input_size[-2:]))
    return layer, (int(grid.shape[1]), int(grid.shape[2]), int(grid.shape[3]))
