"""DINAR compatibility layer: DINAR's class paths, params blocks, state-dict keys and call conventions.

This is the one place in the core that speaks DINAR's string-keyed dicts.
"""

from dinar_core.compat.api import build_dinar_module, load_dinar_state_dict  # noqa: E402

__all__ = ["build_dinar_module", "load_dinar_state_dict"]
