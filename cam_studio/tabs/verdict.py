"""The Compare tab's verdict: what an A → B comparison shows, in plain words, computed from it.

Did the prediction stay (passive fooling keeps it)? How far did GradCAM move toward the SHAM
(the fooling target)? How far did each DiffGradCAM move, next to GradCAM? And what the
common-mode share says about why (``cams.metrics.common_mode_share``).
"""

from __future__ import annotations

from dataclasses import dataclass

from cam_studio.evaluation.tables.sanity import MARGIN as SANITY_MARGIN
from cam_studio.tabs.comparison import Comparison
from cams.metrics import common_mode_share
from fooling.sham import sham_distance

DIFFGRADCAMS = ("MeanDiffGradCAM", "MaxDiffGradCAM", "LSEDiffGradCAM")
TOWARD_SHAM = 0.8  # GradCAM's distance to the SHAM, B ÷ A, at or below which it moved toward it
SEES_THROUGH = 0.2  # a DiffGradCAM moving at most this fraction of GradCAM's change resists it
AS_MUCH = 0.8  # … at least this fraction: it moved as GradCAM did


@dataclass(frozen=True)
class Verdict:
    """The numbers the verdict's sentences are made of (one image, A and B)."""

    top1: tuple[tuple[str, float], tuple[str, float]]  # A's and B's top-1: (name, probability)
    kept: bool
    sham_distance: tuple[float, float] | None  # GradCAM's MSE to the SHAM by A and by B
    gradcam_moved: float | None  # GradCAM's MSE A vs B
    moved: dict[str, float]  # each computed DiffGradCAM's MSE A vs B
    share: float | None  # the common-mode share of the change (None: nothing changed)
    randomised: dict | None = None  # B's re-drawn blocks (a sanity check), if B is randomised
    rank_correlations: dict[str, float] | None = None  # each map's Spearman ρ A vs B, then

    @property
    def sham_ratio(self) -> float | None:
        if self.sham_distance is None or self.sham_distance[0] == 0:
            return None
        return self.sham_distance[1] / self.sham_distance[0]

    def relative(self, method: str) -> float | None:
        """``method``'s movement as a fraction of GradCAM's."""
        if not self.gradcam_moved:
            return None
        return self.moved[method] / self.gradcam_moved


def verdict(comparison: Comparison) -> Verdict | None:
    """The verdict of a comparison of A with B (None with A alone)."""
    if len(comparison.results) < 2:
        return None
    a, b = comparison.results
    top1 = tuple((name, p) for _, name, p in (comparison.top_k(index, 1)[0] for index in (0, 1)))
    moved = comparison.a_vs_b_mses  # computed once with the table and the captions
    distance = None
    if "GradCAM" in a.layer_maps:
        distance = tuple(float(sham_distance(result.layer_maps["GradCAM"])[0])
                         for result in (a, b))
    share = float(common_mode_share(a.class_maps, b.class_maps)[0])
    return Verdict(top1=top1, kept=bool(comparison.predictions_agree()), sham_distance=distance,
                   gradcam_moved=moved.get("GradCAM"),
                   moved={name: moved[name] for name in DIFFGRADCAMS if name in moved},
                   share=None if share != share else share, randomised=comparison.randomised,
                   rank_correlations=comparison.a_vs_b_spearman if comparison.randomised else None)


def sanity_lines(result: Verdict) -> list[str]:
    """The verdict of a sanity check: B is A with blocks re-drawn; which maps stayed."""
    drawn = result.randomised["blocks"]
    what = (f"its top {len(drawn)} block{'s' * (len(drawn) > 1)} ({', '.join(drawn)})"
            if result.randomised["test"] == "cascading" else f"block {drawn[0]} alone")
    ranked = sorted(((value, name) for name, value in result.rank_correlations.items()
                     if value == value), reverse=True)
    kept = [name for value, name in ranked if value >= SANITY_MARGIN]
    stayed = [f"{name} {value:.2f}" for value, name in ranked if value >= SANITY_MARGIN]
    changed = [f"{name} {value:.2f}" for value, name in ranked if value < SANITY_MARGIN]
    lines = [f"- **A sanity check, not a fool**: B is A with {what} re-drawn at random "
             f"(seed {result.randomised['seed']}). A map that still ranks the pixels as A's "
             "does ignores what those weights learned (Adebayo et al. 2018)."]
    if stayed:
        lines.append(f"- **Maps that stayed** (Spearman ρ to A's map ≥ {SANITY_MARGIN}): "
                     + "; ".join(stayed) + ".")
    if changed:
        lines.append(f"- **Maps that changed** (ρ < {SANITY_MARGIN}): " + "; ".join(changed)
                     + ".")
    lines.append("- **What it means**: on this image, " + (
        f"{', '.join(kept)} would look the same "
        "whatever those blocks had learned; the sanity table tests it over photos "
        "(docs/results)." if stayed else "every map depends on the re-drawn weights."))
    return lines


def verdict_markdown(result: Verdict | None) -> str:
    """The verdict as the page shows it: one line per question, then what it means."""
    if result is None:
        return ("**Verdict**: pick a checkpoint B (e.g. one of the ▶ cases above) to see whether "
                "its explanations were fooled.")
    lines = ["### Verdict (computed from this comparison)"]
    if result.randomised:
        return "\n".join([*lines, *sanity_lines(result)])
    (name_a, p_a), (name_b, p_b) = result.top1
    if result.kept:
        lines.append(f"- **The prediction stayed**: A and B both say {name_a} (A {p_a:.0%}, "
                     f"B {p_b:.0%}) — what passive fooling keeps.")
    else:
        lines.append(f"- **The prediction changed**: A says {name_a} ({p_a:.0%}), B says "
                     f"{name_b} ({p_b:.0%}) — on this image B is not a passive fool.")
    ratio = result.sham_ratio
    if ratio is not None:
        a, b = result.sham_distance
        how = ("moved toward the SHAM" if ratio <= TOWARD_SHAM
               else "did not move toward the SHAM")
        lines.append(f"- **GradCAM {how}**: its distance to the SHAM (MSE) went {a:.3f} → "
                     f"{b:.3f} (× {ratio:.2f}; the SHAM is the fake border map a fool is "
                     "made to show).")
    if result.gradcam_moved is not None and result.moved:
        parts = []
        for name, value in result.moved.items():
            fraction = result.relative(name)
            parts.append(f"{name} {value:.3f}" + ("" if fraction is None
                                                  else f" ({fraction:.0%} of GradCAM's)"))
        lines.append(f"- **How far the maps moved** (MSE A vs B): GradCAM "
                     f"{result.gradcam_moved:.3f}; " + "; ".join(parts) + ".")
    lines.append(f"- **What it means**: {meaning(result)}")
    return "\n".join(lines)


def meaning(result: Verdict) -> str:
    """The plain-words reading of a verdict."""
    share = ("" if result.share is None
             else f" The common-mode share of the change is {result.share:.2f} (1 = the same "
                  "for every class, which DiffGradCAM's difference of classes cancels; 0 = "
                  "specific to the explained class, which it cannot).")
    fraction = result.relative("MeanDiffGradCAM") if "MeanDiffGradCAM" in result.moved else None
    if not result.gradcam_moved or result.gradcam_moved < 1e-4:
        return "B explains this image as A does: nothing here was fooled." + share
    if fraction is None:
        return "tick MeanDiffGradCAM to see whether DiffGradCAM resists this change." + share
    if fraction <= SEES_THROUGH:
        return ("DiffGradCAM **sees through** this fool: GradCAM moved, MeanDiffGradCAM "
                "hardly did." + share)
    if fraction >= AS_MUCH:
        return ("DiffGradCAM is **fooled as GradCAM is**: MeanDiffGradCAM moved as much. "
                "DiffGradCAM resists only the class-uniform part of a change." + share)
    return ("DiffGradCAM **resists part of** this change: MeanDiffGradCAM moved less than "
            "GradCAM, not nothing." + share)
