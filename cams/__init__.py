"""CAM engine: every class activation map of the papers from one forward pass.

    from cams import load_backbone, explain
    backbone = load_backbone()                 # efficientnet_lite0, shipped ImageNet weights
    result = explain(backbone, [pil_image])    # result.maps["MeanDiffGradCAM"]: 1×H×W in [0, 1]
"""

from cams.backbones import DEFAULT_BACKBONE, REGISTRY, Backbone, load_backbone
from cams.engine import DEFAULT_METHODS, Explanation, explain, layer_cams
from cams.errors import UserInputError
from cams.methods import DIFF_BASELINES, METHOD_NAMES, METHODS

__all__ = [
    "DEFAULT_BACKBONE", "DEFAULT_METHODS", "DIFF_BASELINES", "METHODS", "METHOD_NAMES", "REGISTRY",
    "Backbone", "Explanation", "UserInputError", "explain", "layer_cams", "load_backbone",
]
