"""SMPLify-X-style body fitting to 2D keypoints and a person mask, in DINAR's camera.

``fit_body(body, keypoints, masks, image_sizes, cfg, device) -> BodyFit`` (``fitter``); losses and priors are
pure functions (``losses``); the torso-based start (``init``); quality figures (``metrics``); the body-model
protocol the fitter needs and the adapters for ``dinar_core.body``'s models (``variables``, ``adapters``).
"""

from dinar_core.fitting.fitter import BodyFit, FitConfig, FrameMetrics, StageReport, as_fit_body, fit_body
from dinar_core.fitting.variables import BodySpec, FitBody, FitVariables

__all__ = ["BodyFit", "BodySpec", "FitBody", "FitConfig", "FitVariables", "FrameMetrics", "StageReport",
           "as_fit_body", "fit_body"]
