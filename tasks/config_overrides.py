"""Validated overrides of config dataclasses: what a YAML file or a ``--set section.key=value`` may change.

Generic over any (nested) dataclass: `override` applies a nested dict of changes, checking every key and every
value against the field's annotation; `apply_overrides` applies ``--set`` items one by one; `read_yaml` reads a
config file. Every problem is a `ConfigError` that names the key or the file. `tasks.config` composes them into the
one resolver of the pipeline config (`tasks.config.resolve_config`).
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, Sequence, Union

import yaml

from dinar_core.errors import DinarError


class ConfigError(DinarError, ValueError):
    """A config file or override that does not fit the dataclasses (unknown key, wrong type, bad choice, unreadable
    YAML). The CLI prints it without a traceback and exits with code 2."""


# YAML 1.1 (PyYAML) reads `1e-7`, `1E5`, `-.5` or `1.0e5` as strings: a float field takes such a string as the number
# it spells. Only float-typed fields do, so a str field keeps "1e-7" as written.
_FLOAT_TEXT = re.compile(r"[-+]?(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][-+]?\d+)?")


def _check_value(name: str, value: Any, tp: Any) -> Any:
    """Validate (and lightly coerce int -> float, numeric text -> float) one leaf value against its annotation."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{name}: {value!r} is not one of {list(typing.get_args(tp))}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_value(name, value, arg)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError("; ".join(errors))
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        (item_tp, *_rest) = typing.get_args(tp) or (Any,)
        return type(value)(_check_value(f"{name}[]", v, item_tp) for v in value) if origin is list else tuple(
            _check_value(f"{name}[]", v, item_tp) for v in value
        )
    if origin is dict or tp is Any:
        return value
    if tp is float:
        if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
            return float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{name}: expected a string, got {value!r}")
        return str(value)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{name} is a section, not a value (expected a mapping of its keys, got {value!r})")
        return override(tp(), value, prefix=f"{name}.")
    return value


def override(cfg: Any, changes: dict, prefix: str = "") -> Any:
    """Return a copy of the dataclass `cfg` with `changes` (a nested dict, as from YAML) applied."""
    if not isinstance(changes, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {changes!r}")
    hints = typing.get_type_hints(type(cfg))
    fields = {f.name for f in dataclasses.fields(cfg)}
    updates = {}
    for key, value in changes.items():
        name = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(f"unknown config key {name!r} (known: {', '.join(sorted(fields))})")
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            updates[key] = override(current, value, prefix=f"{name}.")
        else:
            updates[key] = _check_value(name, value, hints[key])
    return dataclasses.replace(cfg, **updates)


Override = Union[str, tuple[str, Any]]
"""One override: ``"section.key=value"`` (value parsed as YAML, as ``--set`` gives it) or ``("section.key", value)``
with a ready Python value (the CLI's shortcut flags such as ``--smplx-models``: a path is never re-parsed as YAML)."""


def _nested(dotted: str, value: Any, what: str) -> dict:
    """``"fit.ftol", 1e-7`` -> ``{"fit": {"ftol": 1e-7}}``; an empty key part is an error naming `what`."""
    parts = [p.strip() for p in dotted.split(".")]
    if not all(parts):
        raise ConfigError(f"{what}: {dotted.strip()!r} is not a key of the form section.key")
    node: Any = value
    for part in reversed(parts):
        node = {part: node}
    return node


def _yaml_value(raw: str, what: str) -> Any:
    try:
        return yaml.safe_load(raw) if raw.strip() != "" else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what}: the value {raw!r} is not valid YAML ({str(exc).splitlines()[0]})") from None


def parse_override(item: Override) -> dict:
    """One override as a nested dict of changes: ``"segment.threshold=0.3"`` -> ``{"segment": {"threshold": 0.3}}``."""
    if isinstance(item, tuple):
        dotted, value = item
        return _nested(dotted, value, f"{dotted}={value}")
    if not isinstance(item, str) or "=" not in item:
        raise ConfigError(f"--set {item}: not of the form section.key=value (e.g. --set fit.ftol=1e-7)")
    dotted, raw = item.split("=", 1)
    return _nested(dotted, _yaml_value(raw, f"--set {item}"), f"--set {item}")


def _merge(into: dict, changes: dict, path: str) -> None:
    for key, value in changes.items():
        if isinstance(into.get(key), dict) and isinstance(value, dict):
            _merge(into[key], value, f"{path}{key}.")
        elif key in into and (isinstance(into[key], dict) or isinstance(value, dict)):
            raise ConfigError(f"overrides disagree on {path}{key}: set as a section and as a value")
        else:
            into[key] = value


def parse_dotlist(items: Sequence[Override]) -> dict:
    """``["segment.threshold=0.3", "keypoints.backend=openpose"]`` -> one nested dict (values parsed as YAML); two
    items that make one key both a section and a value are a `ConfigError`."""
    out: dict = {}
    for item in items:
        _merge(out, parse_override(item), "")
    return out


def apply_overrides(cfg: Any, overrides: Sequence[Override]) -> Any:
    """`cfg` with each override applied in turn (a later one wins); each error names its override and key."""
    for item in overrides:
        changes = parse_override(item)
        try:
            cfg = override(cfg, changes)
        except ConfigError as exc:
            shown = f"--set {item}" if isinstance(item, str) else f"{item[0]}={item[1]}"
            raise ConfigError(f"{shown}: {exc}") from None
    return cfg


def read_yaml(path: str | os.PathLike) -> dict:
    """A YAML config file as a mapping (empty file: {}); missing, unreadable or malformed is a `ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML ({' '.join(str(exc).split())})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping of sections, got {type(data).__name__}")
    return data
