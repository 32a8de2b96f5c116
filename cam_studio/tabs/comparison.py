"""Comparing checkpoints of one backbone on one image: maps, the MSE tables, entropy, agreement.

This is the computation behind the app's Compare tab and its ``explain`` API: checkpoint A (e.g.
the clean model) and optionally B (e.g. a SHAM-fooled one) explain the same preprocessed image
for the same target and false class, so that their maps can be compared method by method
(DiffGradCAM paper, Table 3 "similarity" and Table 4 "susceptibility").
"""

from __future__ import annotations

import csv
import html
import io
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
from PIL import Image

from cams.backbones import Backbone
from cams.engine import ClassChoice, Explanation, ProgressCallback, explain, explain_pair
from cams.errors import UserInputError
from cams.faithfulness import (
    FAITHFULNESS_STEPS,
    ROAD_QUICK_PERCENTILES,
    faithfulness_curves,
    road,
)
from cams.layers import FEATURES
from cams.methods import method_row
from cams.metrics import (
    baseline_similarity,
    common_mode_share,
    entropies_nats,
    spearman,
    susceptibility,
)
from cams.render import (
    COLORMAP,
    DIVERGING,
    SIGNED_STYLES,
    baseline_captions,
    compose_rows,
    png_html,
    signed_arrays,
)

TABLE_COLUMNS = ("quantity", "method", "A", "B", "A vs B")
SMALL_FONT, LARGE_FONT = 12, 24  # caption sizes of the grid, and in large (projector) mode
LARGE_COLUMNS = 2  # methods per row pair in large mode
FAITHFULNESS_STAGE = "faithfulness (deletion, insertion, ROAD): map-passes done"
# What the bar counts: one map through one perturbed forward pass; an imputation counts as the
# passes it takes as long as (0.12 s against 0.03 s per map in a pass of 8, Lite0 at 224 px on a
# 2-core CPU), so that the time left extrapolated from the rate holds through both kinds of work.
IMPUTATION_PASSES = 4
FAITHFULNESS_CHUNK = 8  # maps whose perturbed passes share one batch (16 images a step)
# Maps this close everywhere (of maps scaled to 0–1) are measured once: at a GAP → Linear head
# (EfficientNet, ResNet) GradCAM, HiResCAM and XGradCAM are one map in exact arithmetic (the
# gradient is the same at every position), computed apart they differ by rounding (≤ 1e-6).
SAME_MAP = 1e-5


def even_chunks(items: Sequence[str], most: int) -> list[list[str]]:
    """``items`` in order, in as few chunks of at most ``most`` as there can be, their sizes
    differing by one at most (9 in chunks of 8: 5 and 4, not 8 and 1)."""
    count = math.ceil(len(items) / most)
    bounds = [round(index * len(items) / count) for index in range(count + 1)]
    return [list(items[start:end]) for start, end in itertools.pairwise(bounds)]


def same_maps(maps: dict[str, torch.Tensor], names: Sequence[str]) -> dict[str, str]:
    """Each of ``names`` with the first of them whose map is within ``SAME_MAP`` of its own
    everywhere (itself if none): the one map whose faithfulness is measured for both."""
    first: dict[str, str] = {}
    for name in names:
        first[name] = next((earlier for earlier in dict.fromkeys(first.values())
                            if torch.allclose(maps[earlier], maps[name], rtol=0, atol=SAME_MAP)),
                           name)
    return first


@dataclass
class Comparison:
    """Explanations of one image by one or two checkpoints (``labels`` names them)."""

    labels: list[str]
    backbones: list[Backbone]
    results: list[Explanation]
    # (deletion AUC, insertion AUC) per checkpoint and method, computed when first asked for
    _faithfulness: list[dict[str, tuple[float, float]]] | None = field(default=None, repr=False)
    _tables: dict[bool, list[list[str | float | None]]] = field(default_factory=dict, repr=False)

    @property
    def target(self) -> int:
        return int(self.results[0].targets[0])

    @property
    def false_class(self) -> int:
        return int(self.results[0].false_classes[0])

    @property
    def methods(self) -> list[str]:
        return list(self.results[0].maps)

    @cached_property
    def baseline_mses(self) -> list[dict[str, float]]:
        """Per checkpoint, each DiffGradCAM(++) map's MSE to its baseline: computed once, shared
        by the grid's captions, the table and the downloads."""
        return [first_values(baseline_similarity(result.maps)) for result in self.results]

    @cached_property
    def a_vs_b_mses(self) -> dict[str, float]:
        """Per method, the MSE between A's and B's maps (empty without B): computed once."""
        if len(self.results) < 2:
            return {}
        return first_values(susceptibility(*(result.maps for result in self.results)))

    @cached_property
    def entropies(self) -> list[dict[str, float]]:
        """Per checkpoint, each map's CAM entropy (nats, at the layer's resolution): computed once."""
        return [first_values(entropies_nats({name: result.layer_maps[name]
                                             for name in self.methods}))
                for result in self.results]

    @property
    def randomised(self) -> dict | None:
        """What B's re-drawn weights are (``cams.randomise``: a sanity check), else None."""
        return self.backbones[-1].metadata.get("randomised") if len(self.backbones) > 1 else None

    @cached_property
    def a_vs_b_spearman(self) -> dict[str, float]:
        """Per method, Spearman's rank correlation of A's and B's maps (the sanity check's
        similarity; NaN where a map is constant; empty without B): computed once."""
        if len(self.results) < 2:
            return {}
        a, b = (result.maps for result in self.results)
        return first_values({name: spearman(a[name], b[name]) for name in a if name in b})

    def picture(self) -> np.ndarray:
        """The preprocessed input as H×W×3 RGB in [0, 1], for display."""
        return self.backbones[0].to_display(self.results[0].inputs)[0].permute(1, 2, 0).cpu().numpy()

    def maps(self, index: int) -> dict[str, np.ndarray]:
        """Checkpoint ``index``'s maps as arrays (views of the tensors, made once)."""
        return dict(self._arrays[index])

    @cached_property
    def _arrays(self) -> list[dict[str, np.ndarray]]:
        return [{name: values.cpu().numpy()[0] for name, values in result.maps.items()}
                for result in self.results]

    def top_k(self, index: int, k: int = 5) -> list[tuple[int, str, float]]:
        """The k most probable classes of checkpoint ``index``: (class, name, probability)."""
        probabilities = self.results[index].probabilities[0]
        values, classes = probabilities.topk(min(k, probabilities.numel()))
        names = self.backbones[index].class_names
        # (as lists: iterating the tensors made a tensor per element, 10 % of a cached request)
        return [(c, names[c], v) for v, c in zip(values.tolist(), classes.tolist())]

    def predictions_agree(self) -> bool | None:
        if len(self.results) < 2:
            return None
        return self.top_k(0, 1)[0][0] == self.top_k(1, 1)[0][0]

    def faithfulness(self, progress: Callable[..., None] | None = None
                     ) -> list[dict[str, tuple[float, float, float]]]:
        """Per checkpoint, each compared method's (deletion AUC, insertion AUC, ROAD combined) of
        the explained class (``cams.metrics.faithfulness_curves`` and ``road``; ScoreCAM
        included if it was computed). ``progress(done, total, stage)`` after each map."""
        if self._faithfulness is None:
            computed = []  # kept only when whole (a job stopped by its budget keeps nothing)
            measured = [name for name in self.methods if (row := method_row(name)) and row.compared]
            sharing = [same_maps(result.maps, measured) for result in self.results]
            chunked = [even_chunks([name for name in measured if shared[name] == name],
                                   FAITHFULNESS_CHUNK) for shared in sharing]
            # The work in map-passes: each chunk's forward passes (deletion and insertion
            # together), then its imputations (ROAD's two orders).
            steps = FAITHFULNESS_STEPS + 1
            per_order = len(ROAD_QUICK_PERCENTILES) * IMPUTATION_PASSES
            total = sum(len(chunk) * (steps + 2 * per_order)
                        for chunks in chunked for chunk in chunks)
            done = 0

            def report(offset: int, units: int) -> Callable[[int, int], None] | None:
                return None if progress is None else (
                    lambda step, _: progress(offset + step * units, total, FAITHFULNESS_STAGE))

            for backbone, result, chunks, shared in zip(self.backbones, self.results, chunked,
                                                        sharing, strict=True):
                scores = {}
                for chunk in chunks:  # every map of a chunk in the same passes, of one image
                    if progress is not None:
                        progress(done, total, FAITHFULNESS_STAGE)
                    maps = torch.cat([result.maps[name] for name in chunk])
                    curves = faithfulness_curves(backbone.model, result.inputs, maps,
                                                 result.targets, progress=report(done, len(chunk)))
                    done += steps * len(chunk)
                    combined = road(backbone.model, result.inputs, maps, result.targets,
                                    progress=report(done, IMPUTATION_PASSES)).combined
                    done += 2 * per_order * len(chunk)
                    for index, name in enumerate(chunk):
                        scores[name] = (float(curves.deletion_auc[index]),
                                        float(curves.insertion_auc[index]),
                                        float(combined[index]))
                computed.append({name: scores[shared[name]] for name in measured})
            self._faithfulness = computed
        return self._faithfulness

    def table(self, faithfulness: bool = False) -> list[list[str | float | None]]:
        """Rows of TABLE_COLUMNS: similarity of each DiffGradCAM(++) to its baseline, per-method
        MSE between A and B (susceptibility) and the common-mode share of the A → B change, CAM
        entropy (nats) per map, with ``faithfulness`` each map's deletion and insertion AUC and
        ROAD combined (A vs B: B − A), and the prediction. Built once per comparison and
        ``faithfulness`` (every request for a cached comparison asks for it again)."""
        if faithfulness not in self._tables:
            self._tables[faithfulness] = self._table_rows(faithfulness)
        return [list(row) for row in self._tables[faithfulness]]

    def _table_rows(self, faithfulness: bool) -> list[list[str | float | None]]:
        rows: list[list[str | float | None]] = []
        for name in self.baseline_mses[0]:
            values = [similarity[name] for similarity in self.baseline_mses]
            rows.append(["similarity: MSE to baseline", name, *pad(values), None])
        if len(self.results) == 2:
            for name, value in self.a_vs_b_mses.items():
                rows.append(["susceptibility: MSE A vs B", name, None, None, value])
            if self.randomised:
                for name, value in self.a_vs_b_spearman.items():
                    rows.append(["sanity: Spearman ρ A vs B (near 1: ignores B's re-drawn "
                                 "weights)", name, None, None,
                                 "constant map" if math.isnan(value) else value])
            share = float(common_mode_share(*(r.class_maps for r in self.results))[0])
            rows.append(["common-mode share of A → B (1: invisible to DiffGradCAM)", "", None,
                         None, "no change" if math.isnan(share) else share])
        for name in self.methods:
            values = [entropies[name] for entropies in self.entropies]
            rows.append(["CAM entropy (nats)", name, *pad(values), None])
        if faithfulness:
            scores = self.faithfulness()
            for position, quantity in enumerate(("deletion AUC (lower: more faithful)",
                                                 "insertion AUC (higher: more faithful)",
                                                 "ROAD combined (higher: more faithful)")):
                for name in scores[0]:
                    values = [score[name][position] for score in scores]
                    rows.append([quantity, name, *pad(values),
                                 values[1] - values[0] if len(values) == 2 else None])
        top1 = [self.top_k(index, 1)[0] for index in range(len(self.results))]
        labels = [f"{c}: {name} ({p:.1%})" for c, name, p in top1]
        agree = self.predictions_agree()
        rows.append(["prediction (top-1)", "", *pad(labels),
                     None if agree is None else ("agree" if agree else "DISAGREE")])
        return rows

    def grid(self, opacity: float = 0.5, columns: int = 6, signed: str = "minmax",
             colormap: str = COLORMAP, large: bool = False) -> np.ndarray:
        """The comparison grid (H×W×3 uint8). The CAM methods in groups of ``columns``, each group
        one row per checkpoint (so A and B sit one above the other, method by method); then per
        checkpoint the true-class / false-class / Difference Salience panels (Divisive Decisions,
        Eq. 1). Captions: under A each DiffGradCAM(++) map's MSE to its baseline, under B each
        map's MSE to A's. ``signed="diverging"`` draws those panels signed (blue < 0 = white <
        red, ``cams.render.signed_maps``) instead of min-max normalised in ``colormap``.
        ``large`` (a projector, a phone): two methods per row pair, captions twice as large."""
        if signed not in SIGNED_STYLES:
            raise UserInputError(f"signed maps {signed!r}: choose {' or '.join(SIGNED_STYLES)}")
        panels = [name for name in self.methods if (row := method_row(name)) and row.class_map]
        methods = [name for name in self.methods if name not in panels]
        if large:
            columns = LARGE_COLUMNS
        groups = [methods[i:i + columns] for i in range(0, len(methods), columns)]
        groups += [panels[i:i + columns] for i in range(0, len(panels), columns)]
        captions = [baseline_captions(self.baseline_mses[0])]
        if len(self.results) == 2:
            captions.append({name: f"MSE vs A {value:.1e}"
                             for name, value in self.a_vs_b_mses.items()})
        rows = []
        for group in filter(None, groups):
            for index, label in enumerate(self.labels):
                maps = self.maps(index)
                if signed == "diverging":
                    maps.update(signed_arrays(self.results[index], 0))
                rows.append((label, {name: maps[name] for name in group}, captions[index]))
        names = self.backbones[0].class_names
        layer = self.backbones[0].layer.name
        where = "" if layer == FEATURES else f" at {layer}"
        title = (f"{self.backbones[0].name}{where} · explained: {self.target}: {names[self.target]} · "
                 f"false class: {self.false_class}: {names[self.false_class]}")
        colormaps = {name: DIVERGING for name in panels} if signed == "diverging" else None
        return compose_rows(self.picture(), rows, title, opacity, colormaps, colormap,
                            LARGE_FONT if large else SMALL_FONT)

    def table_html(self, faithfulness: bool = False) -> str:
        """``table`` as an HTML table (numbers to 4 significant digits)."""
        def cell(value: object) -> str:
            text = "" if value is None else f"{value:.4g}" if isinstance(value, float) else value
            return f"<td>{html.escape(str(text))}</td>"
        return ("<table><tr>" + "".join(f"<th>{name}</th>" for name in TABLE_COLUMNS) + "</tr>"
                + "".join("<tr>" + "".join(map(cell, row)) + "</tr>"
                          for row in self.table(faithfulness)) + "</table>")

    def _repr_html_(self) -> str:
        """In a notebook: the grid and the table (faithfulness rows if computed)."""
        alt = f"CAMs of {' and '.join(self.labels)}, method by method"
        return (f"<div>{png_html(self.grid(), alt, width=1200)}"
                f"{self.table_html(self._faithfulness is not None)}</div>")

    def table_csv(self, faithfulness: bool = False) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(TABLE_COLUMNS)
        writer.writerows([["" if value is None else value for value in row]
                          for row in self.table(faithfulness)])
        return buffer.getvalue()


def first_values(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """Each tensor's first value (its image's: a comparison explains one) as a Python number,
    read with ``tolist``: no tensor operator per value (each takes the interpreter lock twice,
    which a classroom's concurrent requests wait on)."""
    return {name: tensor.tolist()[0] for name, tensor in values.items()}


def pad(values: list) -> list:
    """Two columns (A, B) from one or two values."""
    return [*values, None][:2]


def compare_checkpoints(backbones: list[Backbone], labels: list[str], image: Image.Image,
                        methods: list[str] | str | None = None, target: ClassChoice = None,
                        false_class: ClassChoice = None,
                        progress: ProgressCallback | None = None) -> Comparison:
    """Explain ``image`` with checkpoint A and, if given, B, for the same classes (A's top-1 and
    strongest rival unless given: ``cams.engine.explain_pair``)."""
    return compare_images(backbones, [labels], [image], methods, [target], [false_class],
                          progress)[0]


def compare_images(backbones: list[Backbone], labels: Sequence[list[str]],
                   images: Sequence[Image.Image], methods: list[str] | str | None = None,
                   targets: Sequence[int | None] | None = None,
                   false_classes: Sequence[int | None] | None = None,
                   progress: ProgressCallback | None = None) -> list[Comparison]:
    """``compare_checkpoints`` of several images at once: one forward pass and one VJP per
    checkpoint for all of them (``cams.tabs.batching`` gathers a server's concurrent requests
    so), each image with its own labels and classes. ``targets`` / ``false_classes``: one per
    image, or None for each image's own top-1 and strongest rival (given for every image or
    for none)."""
    if not 1 <= len(backbones) <= 2 or any(len(names) != len(backbones) for names in labels):
        raise ValueError("compare one or two checkpoints, each with a label")
    if len(labels) != len(images):
        raise ValueError("one list of labels per image")
    results = explain_images(backbones, [backbones[0].preprocess(image) for image in images],
                             methods, targets, false_classes, progress)
    return [image_comparison(backbones, names, results, index)
            for index, names in enumerate(labels)]


def explain_images(backbones: list[Backbone], inputs: Sequence[torch.Tensor],
                   methods: list[str] | str | None = None,
                   targets: Sequence[int | None] | None = None,
                   false_classes: Sequence[int | None] | None = None,
                   progress: ProgressCallback | None = None) -> list[Explanation]:
    """The batch's explanations of the preprocessed ``inputs`` (each 1×3×H×W), one per
    checkpoint (A's classes for B: ``explain_pair``), before ``image_comparison`` takes each
    image's share."""
    target, false_class = (per_image(choices, len(inputs))
                           for choices in (targets, false_classes))
    batch = torch.cat(list(inputs))
    if len(backbones) == 1:
        return [explain(backbones[0], batch, methods, target, false_class, progress=progress)]
    return list(explain_pair(*backbones, batch, methods, target, false_class,
                             progress=progress, class_maps=True))


def image_comparison(backbones: list[Backbone], labels: list[str], results: list[Explanation],
                     index: int) -> Comparison:
    """Image ``index`` of a batch's explanations as its own comparison (its tensors copied:
    keeping it does not keep the batch's memory)."""
    one = len(results[0].targets) == 1
    return Comparison(labels=list(labels), backbones=backbones,
                      results=results if one else [result.image(index) for result in results])


def per_image(choices: Sequence[int | None] | None, count: int) -> list[int] | None:
    """One class per image, or None (each image's default); given for some images only: an
    error (a batch explains every image's given classes or none)."""
    if choices is None or all(choice is None for choice in choices):
        return None
    if len(choices) != count or any(choice is None for choice in choices):
        raise ValueError("give a class for every image or for none")
    return [int(choice) for choice in choices]
