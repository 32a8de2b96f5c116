"""The CAM engine: every class activation map of the papers from one forward pass.

    from cams import load_backbone, explain
    backbone = load_backbone()                 # efficientnet_lite0, shipped ImageNet weights
    result = explain(backbone, [pil_image])    # result.maps["MeanDiffGradCAM"]: 1×H×W in [0, 1]
    mine = wrap(my_model, layer="layer4")      # any PyTorch classifier, read at a module

This package is the bottom layer: it imports nothing else of the project. Its command lines are
``python -m cam_studio`` (``cam_studio.commands``).
"""

__version__ = "0.1.0"  # the package's one version (pyproject.toml reads it; --version prints it)

from cams.backbones import DEFAULT_BACKBONE, REGISTRY, Backbone, load_backbone, wrap, zero_shot
from cams.engine import Explanation, explain, explain_pair, layer_cams
from cams.errors import Fix, UserInputError
from cams.methods import DEFAULT_METHODS, DIFF_BASELINES, METHOD_NAMES, METHODS, Kind, Method

__all__ = [
    "DEFAULT_BACKBONE",
    "DEFAULT_METHODS",
    "DIFF_BASELINES",
    "METHODS",
    "METHOD_NAMES",
    "REGISTRY",
    "Backbone",
    "Explanation",
    "Fix",
    "Kind",
    "Method",
    "UserInputError",
    "__version__",
    "explain",
    "explain_pair",
    "layer_cams",
    "load_backbone",
    "wrap",
    "zero_shot",
]
