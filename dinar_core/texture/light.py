"""The photo's low-order light, estimated from the observed texels and the body's normals, and divided out.

Model (per colour channel c): ``I_c(t) = a_c(part(t)) * s_c(n_t)``, ``s_c(n) = Y(n) . L_c`` with the nine real
second-order spherical-harmonic basis functions ``Y`` (Ramamoorthi & Hanrahan's irradiance model, constants left
in ``L``) of the posed texel normal ``n`` (camera frame), and an albedo prior of one constant albedo per body part.
Weighted Gauss-Newton on the albedos and the light jointly, a few rounds per channel (ridge ``sh_ridge`` times the
normal matrix's mean diagonal on the bands 1-2, since a photo sees half the sphere of normals); texels far from the
model are down-weighted (Cauchy weights on the residual, so a print or a logo does not bend the light). Each channel's
shading is scaled to mean 1 over the observed texels, so de-lighting keeps the photo's exposure and the light's
colour is left to the white balance.

De-lighting divides each observed texel by its shading clamped to ``[shade_min, shade_max]``, and only when the SH
light removes at least ``light_min_gain`` of the residual a flat light leaves (:func:`explained`): texture that
merely correlates with the normals (stripes, a checker) is not mistaken for light, so an evenly lit photo is left
as it is. White balance
(``white_balance='grey_world'``): grey-world gains on the de-lit albedo, ``g_c = (mean / mean_c) ** strength``,
clamped to ``[1 / white_balance_max_gain, white_balance_max_gain]`` (a partial grey world: a person in a red shirt
is not turned grey).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def sh_basis(normals: Tensor) -> Tensor:
    """(..., 3) unit normals -> (..., 9) real SH basis (unnormalised): 1, x, y, z, xy, xz, yz, x^2 - y^2,
    3 z^2 - 1."""
    x, y, z = normals.unbind(-1)
    return torch.stack([torch.ones_like(x), x, y, z, x * y, x * z, y * z, x * x - y * y, 3 * z * z - 1], -1)


def sh_shading(normals: Tensor, coeffs: Tensor) -> Tensor:
    """(..., 3) normals, coeffs (3, 9) per channel -> (..., 3) shading."""
    return sh_basis(normals) @ coeffs.T.to(normals)


@dataclass
class LightEstimate:
    """coeffs: (3, 9) SH light per channel, scaled so the shading's mean over the observed texels is 1;
    albedo: (P, 3) the per-part albedos of the model; gains: (3,) white-balance gains applied after de-lighting."""

    coeffs: Tensor
    albedo: Tensor
    gains: Tensor


def estimate_light(colour: Tensor, normals: Tensor, weight: Tensor, groups: Tensor, ridge: float = 0.01,
                   rounds: int = 8, max_texels: int = 8000) -> LightEstimate:
    """colour: (N, 3) observed texel colours; normals: (N, 3) their posed unit normals; weight: (N,) >= 0;
    groups: (N,) int64 albedo group (body part) per texel; max_texels: at most this many texels are used (a fixed
    random subset). Returns :class:`LightEstimate` (gains = 1)."""
    if colour.ndim != 2 or colour.shape[1] != 3 or normals.shape != colour.shape:
        raise ValueError(f"colour and normals must be (N, 3), got {tuple(colour.shape)}, {tuple(normals.shape)}")
    if len(colour) > max_texels:  # the light is low-frequency: a fixed random subset of the texels is enough
        keep = torch.randperm(len(colour), generator=torch.Generator().manual_seed(0))[:max_texels]
        colour, normals, weight, groups = colour[keep], normals[keep], weight[keep], groups[keep]
    I = colour.detach().double().cpu()
    Y = sh_basis(normals.detach().double().cpu())  # (N, 9)
    w0 = weight.detach().double().cpu().clamp_min(0)
    g = groups.detach().long().cpu()
    P = int(g.max()) + 1 if len(g) else 1
    w = w0.clone()

    def albedos(shade: Tensor, w: Tensor) -> Tensor:  # (P, 3) least squares a = sum(w I s) / sum(w s^2)
        num = torch.zeros(P, 3, dtype=I.dtype).index_add_(0, g, w[:, None] * I * shade)
        den = torch.zeros(P, 3, dtype=I.dtype).index_add_(0, g, w[:, None] * shade * shade)
        return num / den.clamp_min(1e-12)

    a = albedos(torch.ones_like(I), w)
    L = torch.zeros(3, 9, dtype=I.dtype)
    L[:, 0] = 1.0
    bands = torch.diag(torch.tensor([0.0] + [1.0] * 8, dtype=I.dtype))
    onehot = torch.nn.functional.one_hot(g, P).to(I.dtype)  # (N, P)
    for _ in range(rounds):
        for c in range(3):  # Gauss-Newton on (albedos, light) jointly, Levenberg damping
            s_c = Y @ L[c]  # (N,)
            r = I[:, c] - a[g, c] * s_c
            J = torch.cat([onehot * s_c[:, None], Y * a[g, c][:, None]], 1)  # (N, P + 9)
            M = J.T @ (J * w[:, None])
            d = float(M.diagonal().mean())
            rhs = J.T @ (w * r)
            rhs[P:] -= ridge * d * (bands @ L[c])  # the ridge pulls the light's bands 1-2 towards 0
            M[P:, P:] += ridge * d * bands
            step = torch.linalg.solve(M + 1e-3 * d * torch.eye(P + 9, dtype=I.dtype), rhs)
            a[:, c] = a[:, c] + step[:P]
            L[c] = L[c] + step[P:]
        shade = Y @ L.T  # (N, 3)
        mean = (shade * w0[:, None]).sum(0) / w0.sum().clamp_min(1e-12)
        L = L / mean[:, None].clamp_min(1e-6)  # the gauge: mean shading 1, the exposure in the albedos
        a = a * mean[None]
        r = (I - a[g] * (Y @ L.T)).norm(dim=1)
        scale = 1.4826 * float(r[w0 > 0].median()) + 1e-3 if bool((w0 > 0).any()) else 1.0
        w = w0 / (1.0 + (r / (2.0 * scale)) ** 2)
    return LightEstimate(L.float(), a.float(), torch.ones(3))


def explained(colour: Tensor, normals: Tensor, weight: Tensor, groups: Tensor, est: LightEstimate) -> float:
    """Share of the weighted squared residual of a flat light (one albedo per group) that the SH light removes."""
    c, w, g = colour.double(), weight.double().clamp_min(0)[:, None], groups.long()
    P = int(g.max()) + 1

    def resid(shade: Tensor) -> float:
        num = torch.zeros(P, 3, dtype=c.dtype).index_add_(0, g, w * c * shade)
        den = torch.zeros(P, 3, dtype=c.dtype).index_add_(0, g, w * shade * shade)
        a = num / den.clamp_min(1e-12)
        return float((w * (c - a[g] * shade) ** 2).sum())

    flat = resid(torch.ones_like(c))
    return 1.0 - resid(sh_shading(normals.double(), est.coeffs.double())) / max(flat, 1e-12)


def delight(colour: Tensor, normals: Tensor, weight: Tensor, groups: Tensor, config) -> tuple[Tensor, LightEstimate]:
    """Estimate the light (:func:`estimate_light`), divide it out (clamped) and white-balance.
    colour, normals: (N, 3); weight, groups: (N,). Returns the de-lit colours (N, 3) and the estimate."""
    est = estimate_light(colour, normals, weight, groups, config.sh_ridge)
    if explained(colour, normals, weight, groups, est) < config.light_min_gain:
        est.coeffs = torch.zeros(3, 9)  # the light is flat as far as the photo tells: nothing is divided out
        est.coeffs[:, 0] = 1.0
    shade = sh_shading(normals.float(), est.coeffs).clamp(config.shade_min, config.shade_max)
    out = colour / shade.to(colour)
    gains = torch.ones(3)
    if config.white_balance == "grey_world" and bool((weight > 0).any()):
        w = weight.float().clamp_min(0)[:, None]
        mean_c = (out.float() * w).sum(0) / w.sum().clamp_min(1e-12)
        gains = (mean_c.mean() / mean_c.clamp_min(1e-6)) ** config.white_balance_strength
        m = config.white_balance_max_gain
        gains = gains.clamp(1.0 / m, m)
        out = out * gains.to(out)
    est.gains = gains
    return out.clamp(0, 1), est


def delight_unwrap(unwrapped, texel_normals: Tensor, parts: Tensor, flat: Tensor, config):
    """De-light an :class:`UnwrapResult` in place of its texture. texel_normals: (N, 3) posed normals of the inside
    texels (order of ``flat``); parts: (T, T) int part map; flat: (N,) inside texel indices. Returns the new
    UnwrapResult and the :class:`LightEstimate` (None when too few texels were seen)."""
    from dinar_core.texture.unwrap import UnwrapResult

    T = unwrapped.confidence.shape[0]
    conf = unwrapped.confidence.reshape(-1)[flat]
    if int((conf > 0).sum()) < 50:
        return unwrapped, None
    col = unwrapped.texture.reshape(-1, 3)[flat]
    groups = parts.reshape(-1)[flat].clamp_min(0).to(col.device)
    out, est = delight(col, texel_normals.to(col), conf, groups, config)
    tex = unwrapped.texture.reshape(-1, 3).clone()
    tex[flat] = torch.where(conf[:, None] > 0, out.to(tex), tex[flat])
    return UnwrapResult(tex.view(T, T, 3), unwrapped.confidence, unwrapped.inside), est
