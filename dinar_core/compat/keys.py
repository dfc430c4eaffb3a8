"""The one key table between DINAR's LatentDiffusion state_dict and :class:`~dinar_core.nets.dinar.DinarModel`'s,
read both ways: :func:`plan_dinar_keys` maps DINAR's keys onto ours (loading), :func:`to_dinar_state_dict` walks
the same table backwards (writing), in DINAR's key order.

A rule names a DINAR key or prefix (ending in ``.``) and ours:

* the 13 schedule buffers (``betas`` ... ``logvar``) <-> ``schedule.*``;
* ``model.*`` (the non-EMA training weights) <-> ``unet_train.*`` when the model keeps one; without it they are
  known-unused when read, and the EMA weights are written there (so DINAR, which loads both, runs the same network);
* ``first_stage.{encoder,generator,compress_branch,renderer}.*`` <-> ``{encoder,generator,compress_branch,renderer}.*``,
  and the legacy ``first_stage.vq_branch.*`` -> ``compress_branch.*`` (read only);
* ``first_stage.rasterizer.faces`` / ``.vertice_values`` / ``first_stage.normal_rasterizer.faces`` <->
  ``uv_faces`` / ``uv_values`` / ``normal_faces``;
* ``first_stage.discriminator.*`` <-> ``discriminator.*`` when the model has one, else known-unused;
* ``model_ema.decay`` / ``model_ema.num_updates`` <-> ``ema_decay`` / ``ema_num_updates``;
* ``model_ema.<UNet parameter name without dots>`` <-> ``unet.<parameter name>``: the EMA weights, which DINAR's
  test step uses (``ema_scope``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from dinar_core.diffusion.schedule import BUFFER_NAMES


@dataclass(frozen=True)
class KeyRule:
    """One row of the key table.

    dinar, ours: a key each, or prefixes (ending in ``.``) followed by the same rest of the key.
    needs: the model attribute the rule needs (None: always applies); without it, DINAR's keys are ``unused``
        for that reason, and writing takes ``write_fallback``'s keys instead (or writes nothing).
    ema: DINAR's rest of the key is the parameter name with its dots removed (LitEma's buffer names).
    legacy: read only (an older checkpoint's name); never written.
    """

    dinar: str
    ours: str
    needs: str | None = None
    unused: str = ""
    write_fallback: str | None = None
    ema: bool = False
    legacy: bool = False

    @property
    def is_prefix(self) -> bool:
        return self.dinar.endswith(".")


KEY_TABLE: tuple[KeyRule, ...] = (
    *(KeyRule(name, f"schedule.{name}") for name in BUFFER_NAMES),
    KeyRule("model.", "unet_train.", needs="unet_train", write_fallback="unet.",
            unused="non-EMA UNet weights; inference uses the EMA weights (model_ema.*), as DINAR's test step"),
    KeyRule("first_stage.encoder.", "encoder."),
    KeyRule("first_stage.generator.", "generator."),
    KeyRule("first_stage.compress_branch.", "compress_branch."),
    KeyRule("first_stage.vq_branch.", "compress_branch.", legacy=True),  # name used by older DINAR checkpoints
    KeyRule("first_stage.rasterizer.faces", "uv_faces"),
    KeyRule("first_stage.rasterizer.vertice_values", "uv_values"),
    KeyRule("first_stage.renderer.", "renderer."),
    KeyRule("first_stage.normal_rasterizer.faces", "normal_faces"),
    KeyRule("first_stage.discriminator.", "discriminator.", needs="discriminator",
            unused="finetuning discriminator; the model was built without one"),
    KeyRule("model_ema.decay", "ema_decay"),
    KeyRule("model_ema.num_updates", "ema_num_updates"),
    KeyRule("model_ema.", "unet.", ema=True),
)
"""DINAR's key layout in DINAR's order (``to_dinar_state_dict`` writes it in this order)."""


def _has(model: nn.Module, attribute: str | None) -> bool:
    return attribute is None or getattr(model, attribute, None) is not None


def rule_for(key: str) -> KeyRule | None:
    """The rule for a DINAR key: an exact key first, else the longest matching prefix; None when none matches."""
    best = None
    for rule in KEY_TABLE:
        if rule.dinar == key:
            return rule
        if rule.is_prefix and key.startswith(rule.dinar) and (best is None or len(rule.dinar) > len(best.dinar)):
            best = rule
    return best


def ema_name_map(unet: nn.Module) -> dict[str, str]:
    """LitEma buffer name (parameter name without dots) -> parameter name, for every UNet parameter."""
    out: dict[str, str] = {}
    for name, _ in unet.named_parameters():
        flat = name.replace(".", "")
        if flat in out:  # cannot happen for DINAR's UNet; guards a future layout
            raise ValueError(f"EMA names collide: {out[flat]!r} and {name!r} both flatten to {flat!r}")
        out[flat] = name
    return out


@dataclass(frozen=True)
class KeyPlan:
    """Where each DINAR key goes.

    Attributes:
        targets: DINAR key -> our state_dict key.
        unused: DINAR key -> why it is deliberately not loaded.
        unplaced: DINAR keys with no place in the model.
        duplicates: our keys that two DINAR keys map to (e.g. both ``vq_branch`` and ``compress_branch``).
    """

    targets: dict[str, str]
    unused: dict[str, str]
    unplaced: list[str]
    duplicates: list[str]


def plan_dinar_keys(keys: list[str], model: nn.Module) -> KeyPlan:
    """Map DINAR's state_dict keys onto `model` (a DinarModel) with :data:`KEY_TABLE`."""
    ema = ema_name_map(model.unet)
    targets: dict[str, str] = {}
    unused: dict[str, str] = {}
    unplaced: list[str] = []
    for k in keys:
        rule = rule_for(k)
        if rule is None:
            unplaced.append(k)
        elif not _has(model, rule.needs):
            unused[k] = rule.unused
        elif not rule.is_prefix:
            targets[k] = rule.ours
        elif rule.ema:
            flat = k[len(rule.dinar):]
            if flat in ema:
                targets[k] = rule.ours + ema[flat]
            else:
                unplaced.append(k)
        else:
            targets[k] = rule.ours + k[len(rule.dinar):]
    seen: dict[str, str] = {}
    duplicates = []
    for k, ours in targets.items():
        if ours in seen:
            duplicates.append(f"{ours} (from {seen[ours]} and {k})")
        seen[ours] = k
    return KeyPlan(targets=targets, unused=unused, unplaced=unplaced, duplicates=duplicates)


def to_dinar_state_dict(model: nn.Module, *, include_discriminator: bool = True) -> "OrderedDict[str, torch.Tensor]":
    """`model`'s weights in DINAR's LatentDiffusion key layout and order: :data:`KEY_TABLE` read backwards.

    ``model.*`` holds the non-EMA UNet when the model keeps one, else the EMA weights again (so DINAR, which
    loads both, runs the same network either way).
    """
    sd = model.state_dict(keep_vars=False)
    left_out = set() if include_discriminator else {"discriminator"}
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for rule in KEY_TABLE:
        if rule.legacy or rule.needs in left_out:
            continue
        ours = rule.ours if _has(model, rule.needs) else rule.write_fallback
        if ours is None:
            continue
        if not rule.is_prefix:
            out[rule.dinar] = sd[ours]
        elif rule.ema:
            for name, _ in model.unet.named_parameters():
                out[rule.dinar + name.replace(".", "")] = sd[ours + name]
        else:
            for k, v in sd.items():
                if k.startswith(ours):
                    out[rule.dinar + k[len(ours):]] = v
    return out
