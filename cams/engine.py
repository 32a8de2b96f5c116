"""The CAM engine: every map of the panel from one forward pass and one vector-Jacobian product.

``layer_cams`` is the one core: it runs the backbone once (no graph below the target layer unless
asked; ``cams.layers``), and ONE batched VJP from the logits back to the
activations with one cotangent per explained scalar (``cams.targets``); then it calls each row of
the method table (``cams.methods``) with what the row's kind asks for. ``explain`` (display maps)
and the training losses' ``true_false_maps`` (differentiable) both go through it. Nothing stays
on the model: a transformer's layer, and what RefineCAM, LeGrad and FullGrad read inside the
network, are read by hooks that live for one pass and ignore other threads (RefineCAM's and
LeGrad's, which also switch timm's fused attention off for their pass, one pass at a time), so
one backbone can serve several threads at once.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image
from torch import Tensor, nn

from cams.backbones import Backbone
from cams.errors import BACKBONE, FALSE_CLASS, IMAGES, NAMES, TARGET, WEIGHTS, Fix, UserInputError
from cams.errors import METHODS as METHODS_INPUT
from cams.folding import folded
from cams.layers import (
    ATTENTION,
    NCHW,
    TOKENS,
    allow_double_backward,
    logits_from,
    logits_with,
    token_grid,
)
from cams.methods import (
    DEFAULT_METHODS,
    FALSE_LOGIT,
    GRADIENT_METHODS,
    LOGIT,
    MEAN_LOGIT,
    MEAN_RIVAL,
    METHOD_NAMES,
    METHODS,
    TARGETED_SEPARATOR,
    TARGETS,
    Kind,
    Method,
    class_logit,
    display_maps,
    gradcam_plus_plus,
    method_row,
)
from cams.randomise import blocks
from cams.targets import strongest_rival, target_cotangents

ClassChoice = int | Sequence[int] | Tensor | None
ProgressCallback = Callable[[int, int], None]

SCORECAM_MASK_EPS = 1e-8  # grad-cam 1.5.x, ScoreCAM.get_cam_weights
ABLATION_VALUE = 1e7  # grad-cam 1.5.x AblationLayer: below the smallest activation by this
ABLATION_BATCH = 64  # ablated copies of the layer's output per pass
ISCAM_STEPS = 10  # torchcam 0.5 ISCAM's num_samples
SMOOTHGRAD_SAMPLES, SMOOTHGRAD_STD = 4, 0.3  # torchcam 0.5 SmoothGradCAMpp's defaults
SSCAM_SAMPLES, SSCAM_STD = 35, 2.0  # torchcam 0.5 SSCAM's defaults
NOISE_SEED = 0  # the noisy methods' draws: the same maps on every call
# grad-cam 1.5.7 SESS's defaults: 12 scales growing by 2/7 of the window (the input's shorter
# side), windows that do not overlap, every patch kept, mean fusion, an 11×11 Gaussian blur of σ 5.
SESS_SCALES, SESS_SCALE_STEP, SESS_BLUR_SIZE, SESS_BLUR_SIGMA = 12, 2 / 7, 11, 5.0
SESS_BASE = "GradCAM"  # the map of each patch
REFINE_FINER = 2  # RefineCAM's layers besides the target layer: blocks at finer resolutions
LEGRAD_BLOCKS = 4  # LeGrad's blocks: the last four (torchcam 0.5's documented example)
FULLGRAD_EPS = 1e-7  # grad-cam 1.5.x scale_cam_image
METHOD_CHUNK_ELEMENTS = 2**19  # gradient elements per method call (2 MB of float32)


@dataclass
class Explanation:
    """The maps of a batch of N images and what they explain.

    ``maps``: display name → N×H×W in [0, 1] at input resolution (docs/equations.md, Display
    normalization).
    ``layer_maps``: display name → N×h×w at layer resolution, before normalization (ReLU applied
    where the method has one); entropy uses these. A map made at the input's resolution
    (FullGrad, SESS, RefineCAM) is averaged onto the target layer's grid here, so that every
    map's entropy counts the same positions.
    ``class_maps`` (when asked for): ``"target"`` and ``"mean"``, the un-ReLU'd class CAMs of the
    explained class and of the mean logit at layer resolution, N×h×w each: what the common-mode
    share of a change between two checkpoints is measured on (``cams.metrics.common_mode_share``).
    """

    maps: dict[str, Tensor]
    layer_maps: dict[str, Tensor]
    logits: Tensor
    targets: Tensor
    false_classes: Tensor
    inputs: Tensor
    class_maps: dict[str, Tensor] = field(default_factory=dict)

    @property
    def probabilities(self) -> Tensor:
        return self.logits.softmax(dim=1)

    def image(self, index: int) -> Explanation:
        """Image ``index`` of the batch as an explanation of its own (a batch of one), its
        tensors copied: keeping it does not keep the batch's memory."""
        def one(values: Tensor) -> Tensor:
            return values[index:index + 1].clone()
        return Explanation(maps={name: one(values) for name, values in self.maps.items()},
                           layer_maps={name: one(values)
                                       for name, values in self.layer_maps.items()},
                           logits=one(self.logits), targets=one(self.targets),
                           false_classes=one(self.false_classes), inputs=one(self.inputs),
                           class_maps={name: one(values)
                                       for name, values in self.class_maps.items()})

    def _repr_html_(self) -> str:
        """In a notebook: each image's maps side by side (at most four images)."""
        from cams.render import explanation_grid, png_html
        shown = min(len(self.targets), 4)
        pictures = [png_html(explanation_grid(self, index), f"maps of image {index}: "
                             + ", ".join(self.maps)) for index in range(shown)]
        more = len(self.targets) - shown
        return "<div>" + "<br>".join(pictures) + (f"<p>… and {more} more images</p>"
                                                   if more > 0 else "") + "</div>"


# What a kind of method needs of a backbone: the reason it is not defined without it, and the map
# that generalises it.
NEEDS: dict[Kind, tuple[Callable[[Backbone], bool], str, str]] = {
    Kind.CLASSIFIER: (lambda backbone: backbone.linear_head,
                      "needs a global-average-pool → Linear head", "GradCAM"),
    Kind.LAYERS: (lambda backbone: backbone.layer.layout == NCHW,
                  "needs a CNN read channels-first (its blocks at several resolutions)",
                  "GradCAM++"),
    Kind.ATTENTION: (lambda backbone: backbone.layer.layout == TOKENS,
                     "needs a vision transformer (attention over tokens)", "GradCAM"),
}


def applies(method: Method, backbone: Backbone) -> bool:
    """Whether ``method`` is defined for ``backbone`` (the classic CAM needs a GAP → Linear head,
    RefineCAM a CNN's resolutions)."""
    need = NEEDS.get(method.kind)
    return need is None or need[0](backbone)


def needs(method: Method) -> str:
    """What ``method`` needs of a backbone, in words ("needs …"; "" for any backbone)."""
    need = NEEDS.get(method.kind)
    return "" if need is None else need[1]


MethodChoice = str | Method  # a display name of the table, or a user's own row


def select_methods(backbone: Backbone,
                   methods: str | Method | Iterable[MethodChoice] | None) -> list[MethodChoice]:
    """Resolve ``None`` / ``"default"`` (the table's default methods), ``"all"``, or names and
    rows: the table's in display order, then a user's own ``Method`` rows in the order given;
    the classic CAM only where the head allows it unless named."""
    if methods is None or (isinstance(methods, str) and methods in ("default", "all")):
        names = DEFAULT_METHODS if methods in (None, "default") else METHOD_NAMES
        wanted = [name for name in names if applies(METHODS[name], backbone)]
    else:
        wanted = [methods] if isinstance(methods, str | Method) else list(methods)
    if not wanted:
        raise UserInputError("no method given", Fix(METHODS_INPUT, "at least one of "
                                                               + ", ".join(METHOD_NAMES)))
    refused = [row for row in method_rows(wanted) if not applies(row, backbone)]
    if refused:
        _, reason, generalisation = NEEDS[refused[0].kind]
        raise UserInputError(f"{refused[0].name} {reason}, and {backbone.name} has none",
                             Fix(METHODS_INPUT, "its generalisation", value=generalisation))
    own = [row for row in wanted if isinstance(row, Method) and row.name not in METHODS]
    clashing = [row.name for row in wanted if isinstance(row, Method) and row.name in METHODS
                and row is not METHODS[row.name]]
    if clashing:
        raise UserInputError(f"a method row is called {clashing[0]!r}, a name the method table "
                             "already has", Fix(METHODS_INPUT, "a row with a name of its own"))
    named = {row if isinstance(row, str) else row.name for row in wanted}
    targeted = [row for row in wanted if isinstance(row, str) and row not in METHODS]
    return [*(name for name in METHOD_NAMES if name in named), *dict.fromkeys(targeted),
            *dict.fromkeys(own)]


def as_input_batch(backbone: Backbone, images: Tensor | Sequence[Image.Image]) -> Tensor:
    """A preprocessed N×3×H×W tensor on the backbone's device, from a tensor or PIL images."""
    if isinstance(images, Image.Image):
        images = [images]
    if not isinstance(images, Tensor):
        if len(images) == 0:
            raise UserInputError("no images given", Fix(IMAGES, "at least one"))
        images = torch.cat([backbone.preprocess(image) for image in images])
    if images.ndim != 4 or images.shape[1] != 3:
        raise UserInputError(f"images of shape {tuple(images.shape)} given",
                             Fix(IMAGES, "an N×3×H×W tensor or PIL images"))
    return images.to(backbone.device, torch.float32, memory_format=backbone.memory_format)


def resolve_classes(choice: ClassChoice, default: Tensor, num_classes: int, what: str) -> Tensor:
    """Per-image class indices from an int, a sequence, a tensor, or ``None`` (the default)."""
    if choice is None:
        return default
    classes = torch.as_tensor(choice, dtype=torch.long, device=default.device).reshape(-1)
    if classes.numel() == 1:
        classes = classes.expand_as(default)
    if classes.shape != default.shape:
        raise UserInputError(f"{classes.numel()} classes given for {default.numel()} images",
                             Fix(what, "one class, or one per image"))
    bad = classes[(classes < 0) | (classes >= num_classes)]
    if bad.numel():
        noun = NAMES.get(what, what).removeprefix("the ")
        raise UserInputError(f"{noun} {int(bad[0])} is out of range: the model has {num_classes} "
                             "classes", Fix(what, f"0 to {num_classes - 1}"))
    return classes.clone()


def per_channel_minmax(maps: Tensor, eps: float) -> Tensor:
    """Each map of N×K×… min-max normalised with the anchors' guard: ``(m − min) / (max − min +
    eps)`` (a constant map becomes zeros)."""
    flat = maps.flatten(2)
    shifted = flat - flat.amin(dim=2, keepdim=True)
    return (shifted / (shifted.amax(dim=2, keepdim=True) + eps)).reshape(maps.shape)


def scorecam_masks(activations: Tensor, size: tuple[int, int]) -> Tensor:
    """ScoreCAM's masks (grad-cam 1.5.x): each channel upsampled (bilinear, corners aligned) to
    the input, then min-max normalised: M×1×H×W from M×h×w."""
    upsampled = F.interpolate(activations[:, None], size=size, mode="bilinear", align_corners=True)
    return per_channel_minmax(upsampled, SCORECAM_MASK_EPS)


def iscam_masks(activations: Tensor, size: tuple[int, int]) -> Tensor:
    """IS-CAM's masks (torchcam 0.5): each channel min-max normalised at the layer, then
    upsampled (bilinear) to the input: M×1×H×W from M×h×w."""
    normalised = per_channel_minmax(activations[:, None], SCORECAM_MASK_EPS)
    return F.interpolate(normalised, size=size, mode="bilinear", align_corners=False)


def masked_batch(inputs: Tensor) -> int:
    """Masked images per pass: 8 of 224×224 on a CPU (small batches stay in its caches; the
    fastest per image on a 2-core machine, see BENCHMARKS.md), 64 on CUDA; as many more as
    smaller inputs allow for the same pixels."""
    per = 64 if inputs.is_cuda else 8
    return per * max(1, (224 * 224) // (inputs.shape[-2] * inputs.shape[-1]))


def masked_scores(backbone: Backbone, inputs: Tensor, activations: Tensor, targets: Tensor,
                  masks_of: Callable[[Tensor, tuple[int, int]], Tensor],
                  scales: Sequence[float] = (1.0,), batch_size: int | None = None,
                  progress: ProgressCallback | None = None) -> Tensor:
    """Per image and channel, the mean over ``scales`` of the target score of the image masked
    by the channel's mask (``masks_of``): ``s_k = mean_i y_c(scale_i · M_k ⊙ x)``, N×K.

    Channels whose masks coincide (dead channels, above all) share their passes: only the
    distinct masks of each image run, ``batch_size`` masked images at a time (default:
    ``masked_batch``), in inference mode.
    """
    batch_size = batch_size or masked_batch(inputs)
    n, k = activations.shape[:2]
    flat = activations.detach().flatten(2)
    low, high = flat.amin(dim=2, keepdim=True), flat.amax(dim=2, keepdim=True)
    # Upsampling commutes with affine maps, so channels with equal keys (affinely related
    # activations) have equal masks, up to the 1e-8 guard in the mask's denominator.
    keys = torch.where(high > low, (flat - low) / (high - low).clamp_min(1e-30), 0.0)
    inverses = [torch.unique(keys[i], dim=0, return_inverse=True)[1] for i in range(n)]
    total = sum(int(inverse.max()) + 1 for inverse in inverses) * len(scales)
    done = 0
    scores = torch.empty(n, k, device=activations.device)
    size = tuple(inputs.shape[-2:])
    model = folded(backbone.model, inputs)  # no graph: the batch norms folded (cams.folding)
    with torch.inference_mode():
        for i, inverse in enumerate(inverses):
            # One representative channel per distinct mask (the first that maps onto it).
            first = torch.full((int(inverse.max()) + 1,), k, device=inverse.device).scatter_reduce(
                0, inverse, torch.arange(k, device=inverse.device), "amin")
            chunks = []
            for channels in first.split(batch_size):
                masks = masks_of(activations[i, channels].detach(), size)
                summed = 0.0
                for scale in scales:
                    logits = model(inputs[i:i + 1] * (scale * masks))
                    summed = summed + logits[:, targets[i]].float()
                    done += len(channels)
                    if progress is not None:
                        progress(done, total)
                chunks.append(summed / len(scales))
            scores[i] = torch.cat(chunks)[inverse]
    return scores


def scorecam_scores(backbone: Backbone, inputs: Tensor, activations: Tensor, targets: Tensor,
                    batch_size: int | None = None, progress: ProgressCallback | None = None) -> Tensor:
    """ScoreCAM's channel scores ``s_k = y_c(x ⊙ M_k)``, N×K, with ``M_k`` = minmax(upsample(A_k))
    (``masked_scores``)."""
    return masked_scores(backbone, inputs, activations, targets, scorecam_masks,
                         batch_size=batch_size, progress=progress)


def iscam_scores(backbone: Backbone, inputs: Tensor, activations: Tensor, targets: Tensor,
                 batch_size: int | None = None, progress: ProgressCallback | None = None) -> Tensor:
    """IS-CAM's channel scores (Naidu et al. 2020, as torchcam 0.5 computes them): ScoreCAM's
    score integrated along the mask's scale, ``s_k = (1/N) Σ_i y_c(c_i · M_k ⊙ x)`` with the
    cumulative coefficients ``c_i = Σ_{j ≤ i} j / N``, N = ``ISCAM_STEPS``; the baseline score
    torchcam subtracts is the same for every channel, and the softmax over channels ignores it."""
    scales = torch.arange(1, ISCAM_STEPS + 1).div(ISCAM_STEPS).cumsum(0).tolist()
    return masked_scores(backbone, inputs, activations, targets, iscam_masks, scales,
                         batch_size, progress)


def image_noise(shape: Sequence[int], std: float, samples: int,
                device: torch.device) -> Iterator[Tensor]:
    """One image's ``samples`` draws of Gaussian noise N(0, std²) of ``shape``, one at a time,
    from a generator seeded with ``NOISE_SEED`` for this image alone: the same draws for an image
    whatever else is in the batch, and on the CPU what torchcam draws for that image alone,
    sample after sample, from torch's global generator after ``torch.manual_seed(NOISE_SEED)``."""
    generator = torch.Generator(device=device).manual_seed(NOISE_SEED)
    for _ in range(samples):
        yield torch.normal(0.0, std, tuple(shape), generator=generator, device=device)


def noisy_gradients(backbone: Backbone, inputs: Tensor, targets: Tensor,
                    samples: int = SMOOTHGRAD_SAMPLES,
                    std: float = SMOOTHGRAD_STD) -> tuple[Tensor, Tensor]:
    """SmoothGradCAM++'s terms (torchcam 0.5): the target logit's gradient at the layer for
    ``samples`` copies of the input plus Gaussian noise (σ = ``std``, in the model's input
    space), S×N×K×h×w, and the last copy's activations, N×K×h×w. Every copy of every image in
    one forward and one backward pass. Each image's noise is its own (``image_noise``): its maps do
    not depend on the images beside it in the batch."""
    draws = torch.stack([torch.stack(list(image_noise(image.shape, std, samples, image.device)))
                         for image in inputs], dim=1)  # S×N×3×H×W
    copies = (inputs.detach()[None] + draws).flatten(0, 1)
    with torch.enable_grad():
        activations, logits = backbone.forward(copies)
        score = logits[torch.arange(len(copies)), targets.repeat(samples)].sum()
        gradients, = torch.autograd.grad(score, activations)
    return gradients.unflatten(0, (samples, len(inputs))), activations.detach()[-len(inputs):]


def smoothed_scores(backbone: Backbone, inputs: Tensor, activations: Tensor, targets: Tensor,
                    batch_size: int | None = None, progress: ProgressCallback | None = None,
                    samples: int = SSCAM_SAMPLES, std: float = SSCAM_STD) -> Tensor:
    """SS-CAM's channel scores (Wang et al. 2020, as torchcam 0.5 computes them): IS-CAM's
    masks (``iscam_masks``) plus Gaussian noise (σ = ``std``, drawn for every image, channel and
    pixel, sample after sample as torchcam does for one image, each image's draws its own as in
    ``image_noise``), the target score of the image so masked
    averaged over ``samples`` draws: ``s_k = (1/S) Σ_s y_c(x ⊙ (M_k + ε_sk))``, N×K; the baseline
    score torchcam subtracts is the same for every channel, and the softmax ignores it.
    ``batch_size`` masked images at a time (default as ScoreCAM's), in inference mode."""
    batch_size = batch_size or masked_batch(inputs)
    n, k = activations.shape[:2]
    size = tuple(inputs.shape[-2:])
    scores = torch.zeros(n, k, device=activations.device)
    done = 0
    model = folded(backbone.model, inputs)  # no graph: the batch norms folded (cams.folding)
    with torch.inference_mode():
        for i in range(n):
            masks = iscam_masks(activations[i].detach(), size)[:, 0]  # K×H×W
            for draw in image_noise(masks.shape, std, samples, masks.device):  # K×H×W each
                noisy = masks + draw
                for channels in torch.arange(k, device=masks.device).split(batch_size):
                    logits = model(inputs[i:i + 1] * noisy[channels, None])
                    scores[i, channels] += logits[:, targets[i]].float()
                    done += len(channels)
                    if progress is not None:
                        progress(done, samples * n * k)
    return scores / samples


def window_starts(length: int, window: int) -> list[int]:
    """SESS's sliding windows along one side (grad-cam 1.5.7): every ``window`` pixels, the last
    shifted back to end at the border."""
    starts = []
    for start in range(0, length, window):
        if start + window >= length:
            starts.append(max(length - window, 0))
            break
        starts.append(start)
    return starts


def gaussian_blur(maps: Tensor, size: int, sigma: float) -> Tensor:
    """``cv2.GaussianBlur(map, (size, size), sigma)`` of each map of N×H×W: a separable kernel,
    the border reflected without repeating its pixel (OpenCV's BORDER_REFLECT_101)."""
    offsets = torch.arange(size, device=maps.device, dtype=maps.dtype) - (size - 1) / 2
    kernel = torch.exp(-offsets ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    padded = F.pad(maps[:, None], (size // 2,) * 4, mode="reflect")
    rows = F.conv2d(padded, kernel.view(1, 1, size, 1))
    return F.conv2d(rows, kernel.view(1, 1, 1, size))[:, 0]


def sess_maps(backbone: Backbone, inputs: Tensor, targets: Tensor, batch_size: int | None = None,
              progress: ProgressCallback | None = None) -> Tensor:
    """SESS's map (Tyagi et al. 2022, as grad-cam 1.5.7 computes it), N×H×W: the image resized
    so its shorter side takes ``SESS_SCALES`` sizes, each cut into square windows of the input's
    shorter side; every patch's GradCAM (one forward and one batched VJP per ``batch_size``
    patches), weighted by its softmax score of the target (from the same forward pass) over the
    best patch's, pasted back and resized to the input, averaged where positive, then blurred."""
    if batch_size is None:
        batch_size = 64 if inputs.is_cuda else 16
    height, width = inputs.shape[-2:]
    window = min(height, width)
    growth = round(window * SESS_SCALE_STEP)
    fused = []
    for i in range(len(inputs)):
        patches, places = [], []
        for scale in range(window, window + growth * SESS_SCALES, growth):
            scaled = TF.resize(inputs[i:i + 1], [scale])
            scaled_height, scaled_width = scaled.shape[-2:]
            for top in window_starts(scaled_height, window):
                for left in window_starts(scaled_width, window):
                    patches.append(scaled[..., top:top + window, left:left + window])
                    places.append((top, left, scaled_height, scaled_width))
        patches = torch.cat(patches)
        target = int(targets[i])
        maps, scores = [], []
        for start in range(0, len(patches), batch_size):
            result = explain(backbone, patches[start:start + batch_size], [SESS_BASE], target)
            maps.append(result.maps[SESS_BASE])
            scores.append(result.probabilities[:, target].float())  # the same pass's scores
            if progress is not None:
                progress(start + len(maps[-1]), len(patches))
        scores = torch.cat(scores).clamp_min(0)
        best = scores.max()
        weights = scores / best if best > 0 else torch.ones_like(scores)
        total = torch.zeros(height, width, device=inputs.device)
        counts = torch.zeros_like(total)
        for cam, weight, (top, left, scaled_height, scaled_width) in zip(
                torch.cat(maps), weights, places):
            canvas = torch.zeros(1, 1, scaled_height, scaled_width, device=inputs.device)
            canvas[..., top:top + window, left:left + window] = cam * weight
            pasted = F.interpolate(canvas, size=(height, width), mode="bilinear",
                                   align_corners=False)[0, 0]
            covered = pasted > 0
            total += torch.where(covered, pasted, 0.0)
            counts += covered
        fused.append(torch.where(counts > 0, total / counts.clamp_min(1), 0.0))
    return gaussian_blur(torch.stack(fused), SESS_BLUR_SIZE, SESS_BLUR_SIGMA)


@dataclass
class Kept:
    """What hooks keep during the main forward pass for a method that reads more than the target
    layer: tensors on the path to the logits (with their graph), and the handles to remove."""

    tensors: list[Tensor] = field(default_factory=list)
    tokens: list[Tensor] = field(default_factory=list)
    handles: list = field(default_factory=list)
    owner: int = field(default_factory=threading.get_ident)  # the thread whose pass it keeps

    @property
    def mine(self) -> bool:
        """Whether the running pass is the owner's (another thread may share the model)."""
        return threading.get_ident() == self.owner

    def remove(self) -> None:
        for handle in reversed(self.handles):
            handle.remove()


def refine_hooks(backbone: Backbone) -> Kept:
    """RefineCAM's hooks: every block's 4-D output, kept for its gradient."""
    kept = Kept()

    def keep(module: nn.Module, args: tuple, output: Tensor) -> Tensor | None:
        if not kept.mine or not isinstance(output, Tensor) or output.ndim != 4:
            return None
        kept.tensors.append(output)
        return output.clone()  # an in-place activation after it must not rewrite what we keep

    kept.handles = [module.register_forward_hook(keep) for _, module in blocks(backbone.model)]
    return kept


def refine_maps(run: ForwardPass) -> Tensor:
    """RefineCAM's map (as grad-cam 1.5.7 computes it), N×H×W: GradCAM++ at the target layer and
    at the last block of each of the ``REFINE_FINER`` next finer resolutions of the network
    (fewer where it has fewer: none leaves GradCAM++), each upsampled to the input and min-max
    normalised, multiplied. From the main forward pass (``refine_hooks`` keep the blocks'
    outputs) and one backward pass for every layer at once."""
    activations = run.activations
    last_at: dict[int, Tensor] = {}  # the last block's output at each finer resolution
    for output in run.kept[Kind.LAYERS].tensors:
        if output.shape[-2] > activations.shape[-2]:
            last_at[output.shape[-2]] = output
    layers = [run.graph_activations, *(last_at[height] for height in sorted(last_at)[:REFINE_FINER])]
    with torch.enable_grad():
        score = run.logits[torch.arange(len(run.targets)), run.targets].sum()
        gradients = torch.autograd.grad(score, layers, retain_graph=True)
    size = tuple(run.inputs.shape[-2:])
    product = 1.0
    for layer, gradient in zip(layers, gradients):
        product = product * display_maps(gradcam_plus_plus(layer.detach(), gradient), size)
    return product


def _timm_attention(module: nn.Module, kept: Kept) -> list:
    """Keep a timm ``Attention``'s probabilities (the output of its ``attn_drop``, on the path to
    the output): its explicit maths instead of the fused kernel while the hook is on."""
    fused = module.fused_attn
    module.fused_attn = False

    def keep(dropout: nn.Module, args: tuple, output: Tensor) -> Tensor | None:
        if not kept.mine:
            return None
        kept.tensors.append(output.clone())
        return kept.tensors[-1]

    class Restore:
        def remove(self) -> None:
            module.fused_attn = fused
    return [module.attn_drop.register_forward_hook(keep), Restore()]


def _torch_attention(module: nn.MultiheadAttention, kept: Kept) -> list:
    """Keep an ``nn.MultiheadAttention``'s per-head probabilities: asked for, then the output
    rebuilt from them (the weights it returns are not on the path to its output)."""
    def ask(attention: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        if not kept.mine:
            return None
        return args[:3], {**kwargs, "need_weights": True, "average_attn_weights": False}

    def rebuild(attention: nn.MultiheadAttention, args: tuple, kwargs: dict,
                output: tuple[Tensor, Tensor]) -> tuple[Tensor, None] | None:
        if not kept.mine:
            return None
        probabilities = output[1]
        kept.tensors.append(probabilities)
        dim = attention.embed_dim
        bias = None if attention.in_proj_bias is None else attention.in_proj_bias[2 * dim:]
        values = F.linear(args[2], attention.in_proj_weight[2 * dim:], bias)
        n, length = values.shape[:2]
        values = values.view(n, length, attention.num_heads, -1).transpose(1, 2)
        mixed = (probabilities @ values).transpose(1, 2).reshape(n, -1, dim)
        return attention.out_proj(mixed), None
    return [module.register_forward_pre_hook(ask, with_kwargs=True),
            module.register_forward_hook(rebuild, with_kwargs=True)]


def block_scores(model: nn.Module, tokens: Tensor) -> Tensor:
    """LeGrad's class scores of a block's tokens: a timm ViT's own head after its final norm
    (its class token or pooling, as in the LeGrad paper); a torchvision ViT's final norm and head
    on the mean token (torchcam 0.5's projection)."""
    if hasattr(model, "forward_head") and hasattr(model, "norm"):
        return model.forward_head(model.norm(tokens))
    if hasattr(model, "heads") and hasattr(getattr(model, "encoder", None), "ln"):
        return model.heads(model.encoder.ln(tokens.mean(dim=1)))
    raise UserInputError(f"LeGrad reads a timm or torchvision vision transformer's head, and "
                         f"{type(model).__name__} is neither", Fix(METHODS_INPUT, "GradCAM"))


def attention_of(block: nn.Module) -> nn.Module | None:
    """A transformer block's attention child whose probabilities LeGrad can read: torchvision's
    ``nn.MultiheadAttention``, or timm's ``Attention`` (by its ``attn_drop``)."""
    for name in ATTENTION:
        attention = getattr(block, name, None)
        if isinstance(attention, nn.MultiheadAttention) or isinstance(
                getattr(attention, "attn_drop", None), nn.Module):
            return attention
    return None


def legrad_hooks(backbone: Backbone) -> Kept:
    """LeGrad's hooks on the last ``LEGRAD_BLOCKS`` transformer blocks: each block's attention
    probabilities (on the path to its output) and its output tokens."""
    model = backbone.model
    found = [(block, attention) for block in model.modules()
             if (attention := attention_of(block)) is not None]
    if not found:
        raise UserInputError(f"LeGrad finds no attention blocks in {type(model).__name__}",
                             Fix(METHODS_INPUT, "GradCAM"))
    kept = Kept()
    for block, attention in found[-LEGRAD_BLOCKS:]:
        hook = _torch_attention if isinstance(attention, nn.MultiheadAttention) else _timm_attention
        kept.handles += hook(attention, kept)
        kept.handles.append(block.register_forward_hook(
            lambda module, args, output: kept.tokens.append(output) if kept.mine else None))
    return kept


def legrad_maps(run: ForwardPass) -> Tensor:
    """LeGrad's map (Bousselham et al. 2024, as torchcam 0.5 computes it), N×h×w on the token
    grid: for each of the last ``LEGRAD_BLOCKS`` transformer blocks, the gradient of the
    block's target class score (``block_scores``) with respect to its attention probabilities,
    ReLU, averaged over heads and queries, the prefix keys dropped; averaged over the blocks.
    From the main forward pass (``legrad_hooks``), one short backward pass per block (each
    stops at its own attention)."""
    kept, targets = run.kept[Kind.ATTENTION], run.targets
    prefix = run.backbone.layer.prefix_tokens
    relevance = 0.0
    for attention, output in zip(kept.tensors, kept.tokens):
        with torch.enable_grad():
            scores = block_scores(run.backbone.model, output)
            score = scores[torch.arange(len(targets)), targets].sum()
            gradient, = torch.autograd.grad(score, attention, retain_graph=True)
        relevance = relevance + gradient.relu().mean(dim=(1, 2))[:, prefix:]
    height, width = token_grid(relevance.shape[-1], tuple(run.inputs.shape[-2:]), "LeGrad")
    return (relevance / len(kept.tensors)).view(len(targets), height, width)


def ablation_scores(backbone: Backbone, inputs: Tensor, activations: Tensor, targets: Tensor,
                    batch_size: int | None = None, progress: ProgressCallback | None = None) -> Tensor:
    """AblationCAM's channel scores ``y_c`` with channel k ablated at the layer, N×K: set to 0,
    or to the image's smallest activation − 1e7 where its activations go below 0 (grad-cam
    1.5.x's ablation layer); ``batch_size`` ablated copies at a time (default 64), in inference
    mode, after the layer only where the backbone allows it (``cams.layers.logits_with``)."""
    batch_size = batch_size or ABLATION_BATCH
    n, k = activations.shape[:2]
    scores = torch.empty(n, k, device=activations.device)
    done = 0
    for i in range(n):
        grid = activations[i].detach()
        low = grid.min()
        value = 0.0 if low == 0 else float(low) - ABLATION_VALUE
        chunks = []
        for channels in torch.arange(k, device=grid.device).split(batch_size):
            ablated = grid.expand(len(channels), *grid.shape).clone()
            ablated[torch.arange(len(channels)), channels] = value
            logits = logits_with(backbone.model, backbone.layer, inputs[i:i + 1], ablated)
            chunks.append(logits[:, targets[i]].float())
            done += len(channels)
            if progress is not None:
                progress(done, n * k)
        scores[i] = torch.cat(chunks)
    return scores


def hessian_terms(backbone: Backbone, inputs: Tensor, activations: Tensor,
                  targets: Tensor) -> tuple[Tensor, Tensor]:
    """ShapleyCAM's ``G = ∂y_c/∂A`` and ``H·A`` (the Hessian-vector product in the direction of
    the activations), for the whole batch at once: what follows the layer runs again with a
    graph (``cams.layers.logits_from``), then two backward passes (the images are independent,
    so the sums over the batch keep each image's terms apart)."""
    allow_double_backward(backbone.model)  # a fused attention kernel has no second derivative
    with torch.enable_grad():
        grid = activations.detach().clone().requires_grad_()
        logits = logits_from(backbone.model, backbone.layer, inputs, grid)
        score = logits[torch.arange(len(targets)), targets].sum()
        gradient, = torch.autograd.grad(score, grid, create_graph=True)
        product = None
        if gradient.requires_grad:  # a head linear in A has no second derivative
            product, = torch.autograd.grad(gradient, grid, grad_outputs=grid.detach(),
                                           allow_unused=True)
    return gradient.detach(), (torch.zeros_like(grid) if product is None else product.detach())


def bias_layers(model: nn.Module) -> list[nn.Module]:
    """FullGrad's layers, as grad-cam 1.5.x picks them: the ``Conv2d`` and ``BatchNorm2d``
    (exactly those types, not subclasses such as timm's BatchNormAct2d) that have a bias."""
    return [module for module in model.modules()
            if type(module) in (nn.Conv2d, nn.BatchNorm2d) and module.bias is not None]


def effective_bias(layer: nn.Module) -> Tensor:
    """A layer's bias; for a batch norm in eval mode ``b − μ·γ/√(σ² + ε)``."""
    if isinstance(layer, nn.BatchNorm2d):
        return (layer.bias - layer.running_mean * layer.weight
                / torch.sqrt(layer.running_var + layer.eps)).detach()
    return layer.bias.detach()


def full_gradient_maps(backbone: Backbone, inputs: Tensor, targets: Tensor) -> Tensor:
    """FullGrad's map, N×H×W: ``|x ⊙ ∇x|`` and, for every bias layer, ``|b ⊙ ∇_out|``, each
    channel min-max normalised and summed, upsampled to the input (bilinear; summed at the
    layer's resolution first, which upsampling's linearity allows). One forward and one backward
    pass through the whole network."""
    layers = bias_layers(backbone.model)
    outputs: list[Tensor] = []
    owner = threading.get_ident()

    def keep(module: nn.Module, args: tuple, output: Tensor) -> Tensor | None:
        if threading.get_ident() != owner:  # another thread's pass through a shared model
            return None
        outputs.append(output)
        return output.clone()  # an in-place activation after it must not rewrite what we keep

    handles = [layer.register_forward_hook(keep) for layer in layers]
    try:
        with torch.enable_grad():
            pixels = inputs.detach().clone().requires_grad_()
            logits = backbone.model(pixels)
            score = logits[torch.arange(len(targets)), targets].sum()
            gradients = torch.autograd.grad(score, [pixels, *outputs], allow_unused=True)
    finally:
        for handle in handles:
            handle.remove()
    size = tuple(inputs.shape[-2:])
    total = per_channel_minmax((pixels.detach() * gradients[0]).abs(), FULLGRAD_EPS).sum(dim=1)
    for layer, gradient in zip(layers, gradients[1:]):
        if gradient is None:
            continue
        terms = (effective_bias(layer)[None, :, None, None] * gradient).abs()
        summed = per_channel_minmax(terms, FULLGRAD_EPS).sum(dim=1, keepdim=True)
        total = total + F.interpolate(summed, size=size, mode="bilinear",
                                      align_corners=False)[:, 0]
    return total


@dataclass
class ForwardPass:
    """One batch through the backbone: what every method's ``layer_map`` draws on."""

    backbone: Backbone
    inputs: Tensor
    activations: Tensor
    targets: Tensor
    scorecam_batch_size: int | None
    progress: ProgressCallback | None
    logits: Tensor | None = None
    graph_activations: Tensor | None = None  # the activations before detaching, with their graph
    kept: dict[Kind, Kept] = field(default_factory=dict)  # what PASS_HOOKS kept on this pass

    @property
    def scores(self) -> Tensor:
        """The target class's logit of each image, N."""
        return self.logits.detach()[torch.arange(len(self.targets)), self.targets].float()


# Hooks a kind of method installs on the main forward pass (which then keeps its graph below the
# target layer): what they keep reaches its ``EXTRA_ARGUMENTS`` as ``run.kept[kind]``.
HOOKED_PASS = threading.Lock()
PASS_HOOKS: dict[Kind, Callable[[Backbone], Kept]] = {
    Kind.LAYERS: refine_hooks,
    Kind.ATTENTION: legrad_hooks,
}

# What the engine passes to a method's ``layer_map`` after the activations, by the method's kind
# (gradient methods are batched separately, see ``layer_cams``).
EXTRA_ARGUMENTS: dict[Kind, Callable[[ForwardPass], tuple[Tensor, ...]]] = {
    Kind.ACTIVATIONS: lambda run: (),
    Kind.CLASSIFIER: lambda run: (run.backbone.classifier_weight()[run.targets],),
    Kind.MASKED_SCORES: lambda run: (scorecam_scores(
        run.backbone, run.inputs, run.activations, run.targets, run.scorecam_batch_size,
        run.progress),),
    Kind.INTEGRATED_SCORES: lambda run: (iscam_scores(
        run.backbone, run.inputs, run.activations, run.targets, run.scorecam_batch_size,
        run.progress),),
    Kind.SMOOTHED_SCORES: lambda run: (smoothed_scores(
        run.backbone, run.inputs, run.activations, run.targets, run.scorecam_batch_size,
        run.progress),),
    Kind.NOISY_GRADIENTS: lambda run: noisy_gradients(run.backbone, run.inputs, run.targets),
    Kind.SCALED_PATCHES: lambda run: (sess_maps(run.backbone, run.inputs, run.targets,
                                                progress=run.progress),),
    Kind.LAYERS: lambda run: (refine_maps(run),),
    Kind.ATTENTION: lambda run: (legrad_maps(run),),
    Kind.FULL_GRADIENT: lambda run: (full_gradient_maps(run.backbone, run.inputs, run.targets),),
    Kind.SECOND_ORDER: lambda run: hessian_terms(run.backbone, run.inputs, run.activations,
                                                 run.targets),
    Kind.ABLATED_SCORES: lambda run: (ablation_scores(
        run.backbone, run.inputs, run.activations, run.targets, run.scorecam_batch_size,
        run.progress), run.scores),
}


@dataclass
class LayerCams:
    """Maps at layer resolution (before display normalization), keyed by method name, with the
    logits, the explained and false classes, and the target layer's activations."""

    maps: dict[str, Tensor]
    logits: Tensor
    targets: Tensor
    false_classes: Tensor
    activations: Tensor


def method_rows(methods: Sequence[str | Method]) -> list[Method]:
    """Table rows for method names (rows given as ``Method`` pass through)."""
    unknown = [name for name in methods if isinstance(name, str) and method_row(name) is None]
    if unknown:
        raise UserInputError(f"unknown method {unknown[0]!r}",
                             Fix(METHODS_INPUT, "names of " + ", ".join(METHOD_NAMES)
                                 + f", or METHOD{TARGETED_SEPARATOR}TARGET (TARGET one of "
                                 + ", ".join(TARGETS) + ")"))
    return [method_row(name) if isinstance(name, str) else name for name in methods]


def layer_cams(backbone: Backbone, inputs: Tensor, methods: Sequence[str | Method],
               target: ClassChoice = None, false_class: ClassChoice = None, *,
               create_graph: bool = False, scorecam_batch_size: int | None = None,
               progress: ProgressCallback | None = None) -> LayerCams:
    """The one core every map comes from: ``explain`` and the training losses alike.

    One forward pass (no graph below the target layer unless ``create_graph``; the rest with a
    graph), ONE batched VJP with a cotangent per explained scalar, then each row's ``layer_map``.
    With ``create_graph=True`` the features keep their graph and the VJP is differentiable, so
    the maps are differentiable with respect to the model's parameters.
    """
    rows = method_rows(methods)
    gradient_names = list(dict.fromkeys(row.gradient for row in rows if row.kind is Kind.GRADIENT))
    # Methods that read inside the network below the layer keep it through hooks on this pass:
    # one such pass at a time, each hook keeping only its own thread's tensors.
    hooked = [kind for kind in dict.fromkeys(row.kind for row in rows) if kind in PASS_HOOKS]
    kept: dict[Kind, Kept] = {}
    needs_graph = bool(gradient_names) or create_graph or bool(hooked)
    with HOOKED_PASS if hooked else contextlib.nullcontext():
        try:
            for kind in hooked:
                kept[kind] = PASS_HOOKS[kind](backbone)
            with torch.enable_grad() if hooked else contextlib.nullcontext():
                activations, logits = backbone.forward(
                    inputs, graph_below=create_graph or bool(hooked), needs_graph=needs_graph)
        finally:
            for hooks in kept.values():
                hooks.remove()

    if not create_graph and not bool(torch.isfinite(logits.detach()).all()):
        raise UserInputError("the model's outputs for this input are not finite (NaN or Inf): "
                             "its maps would mean nothing",
                             Fix(WEIGHTS, "weights that give finite outputs (a diverged training "
                                          "leaves NaN or huge weights)"))
    top1 = logits.detach().argmax(dim=1)
    targets = resolve_classes(target, top1, logits.shape[1], TARGET)
    false_classes = resolve_classes(false_class, strongest_rival(logits, targets),
                                    logits.shape[1], FALSE_CLASS)
    if logits.shape[1] > 1 and bool((false_classes == targets).any()):
        raise UserInputError("the false class must differ from the target class",
                             Fix(FALSE_CLASS, "another class"))

    if gradient_names:
        with torch.enable_grad():
            cotangents = target_cotangents(logits if create_graph else logits.detach(), targets,
                                           false_classes, gradient_names)
            gradients, = torch.autograd.grad(logits, activations, grad_outputs=cotangents,
                                             is_grads_batched=True, create_graph=create_graph,
                                             retain_graph=create_graph or bool(kept))
    graph_activations = activations
    # The same memory layout as the gradients keeps the element-wise maths of the methods fast.
    activations = (activations if create_graph else activations.detach()).contiguous()

    maps: dict[str, Tensor] = {}
    with torch.set_grad_enabled(create_graph):
        # Gradient methods sharing a function run as one call over their stacked gradients
        # (T×N×K×h×w), a few images at a time so that the temporaries stay in the caches.
        by_function: dict[Callable, list[Method]] = {}
        for row in rows:
            if row.kind is Kind.GRADIENT:
                by_function.setdefault(row.layer_map, []).append(row)
        for function, group in by_function.items():
            stacked = [gradient_names.index(row.gradient) for row in group]
            if stacked == list(range(stacked[0], stacked[0] + len(stacked))):
                stacked = slice(stacked[0], stacked[0] + len(stacked))  # a view, not a copy
            per_image = len(group) * activations[0].numel()
            step = max(1, METHOD_CHUNK_ELEMENTS // per_image)
            chunks = [function(activations[i:i + step], gradients[stacked, i:i + step])
                      for i in range(0, len(activations), step)]
            maps.update(zip((row.name for row in group), torch.cat(chunks, dim=1)))
        run = ForwardPass(backbone, inputs, activations, targets, scorecam_batch_size, progress,
                          logits, graph_activations, kept)
        for row in rows:
            if row.kind is not Kind.GRADIENT:
                maps[row.name] = row.layer_map(activations, *EXTRA_ARGUMENTS[row.kind](run))
    return LayerCams(maps={row.name: maps[row.name] for row in rows},
                     logits=logits if create_graph else logits.detach(), targets=targets,
                     false_classes=false_classes, activations=activations)


# What a training loss can supervise: gradient methods (differentiable through their gradient)
# whose map is of the true class (not FalseClassCAM's f, nor DifferenceSalience's t − f).
SUPERVISED_METHODS: tuple[str, ...] = tuple(
    name for name in GRADIENT_METHODS if METHODS[name].class_map not in ("f", "t − f"))


def gradient_method(name: str) -> Method:
    """The row of a method a training loss can supervise, or a UserInputError."""
    supervised = Fix(METHODS_INPUT, "one of " + ", ".join(SUPERVISED_METHODS))
    if name not in GRADIENT_METHODS:
        raise UserInputError(f"{name!r} is not a gradient method, which a training loss needs",
                             supervised)
    if name not in SUPERVISED_METHODS:
        raise UserInputError(f"{name} is not a map of the true class", supervised)
    return METHODS[name]


# The false-class maps ``f`` a training loss can use, as rows of the supervised method: the mean
# rival's logit, the strongest rival's, or every class's (the target's own is dropped after).
RIVALS: dict[str, Callable[[Method, int], list[Method]]] = {
    "mean": lambda row, classes: [row.explaining(MEAN_RIVAL)],
    "strongest": lambda row, classes: [row.explaining(FALSE_LOGIT)],
    "all": lambda row, classes: [row.explaining(class_logit(j)) for j in range(classes)],
}
MAX_PAIRWISE_CLASSES = 64  # "all" rivals computes a map per class


def check_rivals(rivals: str, classes: int) -> str:
    """``rivals`` if a training loss can use it with ``classes`` classes, else a UserInputError."""
    if rivals not in RIVALS:
        raise UserInputError(f"unknown rivals {rivals!r}", Fix("rivals", ", ".join(RIVALS)))
    if rivals == "all" and classes > MAX_PAIRWISE_CLASSES:
        raise UserInputError(f"every rival of {classes} classes is {classes - 1} maps per image",
                             Fix("rivals", value="mean"), Fix("rivals", value="strongest"))
    return rivals


def true_false_maps(backbone: Backbone, inputs: Tensor, method: str, targets: Tensor,
                    rivals: str = "mean") -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Differentiable layer maps for training, from ``layer_cams`` with ``create_graph=True``:
    ``t`` = the ``method``'s map of the true class (N×h×w) and ``f`` = the same method's maps of
    the false class (R×N×h×w), by ``rivals``: the mean-rival logit ``mean_{j≠c} y_j`` (R = 1; the
    other class when there are two), the strongest rival (R = 1), or every rival (R = C − 1; the
    losses average over them; Divisive Decisions §3 leaves more than two classes open). Returns
    t, f, the logits and the activations, all carrying the graph to the model's parameters.
    """
    row = gradient_method(method)
    classes = backbone.num_classes
    false_rows = RIVALS[check_rivals(rivals, classes)](row, classes)
    result = layer_cams(backbone, inputs, [row, *false_rows], targets, create_graph=True)
    false_maps = torch.stack([result.maps[false.name] for false in false_rows])
    if len(false_rows) == classes and classes > 1:  # every class: keep the rivals of each image
        rival_index = torch.stack([torch.cat([torch.arange(c), torch.arange(c + 1, classes)])
                                   for c in result.targets.tolist()], dim=1)
        false_maps = false_maps.gather(0, rival_index.to(false_maps.device)[..., None, None]
                                       .expand(-1, -1, *false_maps.shape[-2:]))
    return result.maps[row.name], false_maps, result.logits, result.activations


def linear_head_gradcams(backbone: Backbone, activations: Tensor, classes: Tensor) -> Tensor:
    """GradCAM's layer maps of many classes per image (``classes``: N×k indices) at a global-
    average-pool → Linear head, with no VJP: there ``∂y_j/∂A_kij = W_jk / Z`` at every position,
    so GradCAM of class j is ``ReLU(Σ_k (W_jk / Z) A_k)``, one batched product for every class
    (N×k×h×w). Differentiable in the activations and the classifier's weights: the SHAM attack
    on many classes at once supervises these (``fooling.train``)."""
    if not backbone.linear_head:
        raise UserInputError(f"{backbone.name}'s head is not global-average-pool → Linear, where "
                             "every class's GradCAM is one product",
                             Fix(BACKBONE, "a backbone with such a head (a ResNet, an "
                                           "EfficientNet)"))
    z = activations.shape[-1] * activations.shape[-2]
    # Every class's map in one product (C×K by K×Z per image), then the asked ones: the cost does
    # not grow with k, and the gradient flows through a gather, not a scatter into C×K.
    every = torch.einsum("ck,nkz->ncz", backbone.classifier_weight() / z, activations.flatten(2))
    picked = every.gather(1, classes[..., None].expand(-1, -1, every.shape[-1]))
    return F.relu(picked).unflatten(-1, activations.shape[-2:])


# The two un-ReLU'd class CAMs an Explanation keeps when asked (``Explanation.class_maps``).
CLASS_MAP_ROWS: dict[str, Method] = {
    "target": METHODS["TrueClassCAM"].explaining(LOGIT),
    "mean": METHODS["TrueClassCAM"].explaining(MEAN_LOGIT),
}


def explain(backbone: Backbone, images: Tensor | Sequence[Image.Image],
            methods: str | Method | Iterable[MethodChoice] | None = None, target: ClassChoice = None,
            false_class: ClassChoice = None, *, create_graph: bool = False,
            scorecam_batch_size: int | None = None, progress: ProgressCallback | None = None,
            class_maps: bool = False) -> Explanation:
    """Explain a batch of images with every requested CAM method.

    ``images``: a preprocessed N×3×H×W tensor or PIL images. ``methods``: names (see
    ``cams.methods.METHOD_NAMES``) and your own ``Method`` rows, ``"all"``, or ``None`` for the
    table's default methods; ``result.maps`` is keyed by each row's name.
    ``target`` defaults to the top-1 class, ``false_class`` to the strongest rival; each may be
    one index for all images or one per image. ``progress(done, total)`` reports ScoreCAM's
    masked forward passes. ``class_maps`` adds ``Explanation.class_maps``, from the same pass.
    """
    names = select_methods(backbone, methods)
    inputs = as_input_batch(backbone, images)
    extra = list(CLASS_MAP_ROWS.values()) if class_maps else []
    result = layer_cams(backbone, inputs, [*names, *extra], target, false_class,
                        create_graph=create_graph, scorecam_batch_size=scorecam_batch_size,
                        progress=progress)
    kept = {key: result.maps.pop(row.name) for key, row in CLASS_MAP_ROWS.items()
            if row in extra}
    # One upsampling call for every map of every image at each resolution (the layer's; the
    # input's for FullGrad, which reads no layer).
    by_size: dict[tuple[int, ...], list[str]] = {}
    for name, layer_map in result.maps.items():
        by_size.setdefault(tuple(layer_map.shape[-2:]), []).append(name)
    maps: dict[str, Tensor] = {}
    for names in by_size.values():
        stacked = display_maps(torch.cat([result.maps[name] for name in names]),
                               tuple(inputs.shape[-2:]))
        maps.update(zip(names, stacked.split(inputs.shape[0])))
    maps = {name: maps[name] for name in result.maps}
    grid = tuple(result.activations.shape[-2:])
    layer_maps = {name: layer_map if tuple(layer_map.shape[-2:]) == grid
                  else F.adaptive_avg_pool2d(layer_map[:, None], grid)[:, 0]
                  for name, layer_map in result.maps.items()}
    return Explanation(maps=maps, layer_maps=layer_maps, logits=result.logits,
                       targets=result.targets, false_classes=result.false_classes, inputs=inputs,
                       class_maps=kept)


def explain_pair(backbone_a: Backbone, backbone_b: Backbone,
                 images: Tensor | Sequence[Image.Image],
                 methods: str | Method | Iterable[MethodChoice] | None = None,
                 target: ClassChoice = None, false_class: ClassChoice = None, *,
                 progress: ProgressCallback | None = None,
                 class_maps: bool = False) -> tuple[Explanation, Explanation]:
    """Explain the same inputs with checkpoints A and B of one task, for the same classes.

    The target defaults to A's top-1 class and the false class to A's strongest rival; B explains
    those same classes on A's preprocessed inputs, so each method's maps of A and B are directly
    comparable (DiffGradCAM paper, Table 4).
    """
    if backbone_a.num_classes != backbone_b.num_classes:
        raise UserInputError(f"checkpoints A and B have {backbone_a.num_classes} and "
                             f"{backbone_b.num_classes} classes",
                             Fix(WEIGHTS, "two checkpoints of the same task"))
    rows = select_methods(backbone_a, methods)
    first = explain(backbone_a, images, rows, target, false_class, progress=progress,
                    class_maps=class_maps)
    second = explain(backbone_b, first.inputs, rows, first.targets, first.false_classes,
                     progress=progress, class_maps=class_maps)
    return first, second
