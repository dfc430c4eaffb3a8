"""DINAR's camera constants, torch-free (configs such as ``dinar_core.fitting.config`` import them without torch);
``dinar_core.render.camera`` re-exports them."""

DINAR_FOCAL = 5000.0
"""DINAR's focal length in pixels (fx = fy), whatever the image size."""
