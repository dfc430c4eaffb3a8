"""DINAR compatibility layer: DINAR's class paths, params blocks, state-dict keys and call conventions.

This is the one place in the core that speaks DINAR's string-keyed dicts.
"""
