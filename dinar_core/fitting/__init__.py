"""SMPLify-X-style body fitting to 2D keypoints and a person mask, in DINAR's camera.

``fit_body(body, keypoints, masks, image_sizes, cfg, device) -> BodyFit`` (``fitter``) reads as the algorithm:
targets (``targets``), the torso-based start (``init``), the stages (``schedule``) minimising the objective
(``objective``, built from the pure losses and priors of ``losses``), quality figures (``metrics``). Its config is
``config.FitConfig``; the body-model protocol the fitter needs and the adapters for ``dinar_core.body``'s models
are ``variables`` and ``adapters``.
"""

from typing import TYPE_CHECKING

from dinar_core.lazy import lazy_package

if TYPE_CHECKING:  # resolved lazily below, so that e.g. the torch-free `config` submodule imports no torch
    from dinar_core.fitting.config import FitConfig
    from dinar_core.fitting.fitter import BodyFit, as_fit_body, fit_body
    from dinar_core.fitting.metrics import FrameMetrics
    from dinar_core.fitting.schedule import StageReport
    from dinar_core.fitting.variables import BodySpec, FitBody, FitVariables

__all__ = ["BodyFit", "BodySpec", "FitBody", "FitConfig", "FitVariables", "FrameMetrics", "StageReport",
           "as_fit_body", "fit_body"]

_EXPORTS = {"FitConfig": "config", "BodyFit": "fitter", "as_fit_body": "fitter", "fit_body": "fitter",
            "FrameMetrics": "metrics", "StageReport": "schedule", "BodySpec": "variables", "FitBody": "variables",
            "FitVariables": "variables"}
lazy_package(__name__, _EXPORTS)
