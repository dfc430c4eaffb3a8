"""DINAR's texture pipeline: one photo of a person -> 21-channel neural texture with the unseen part inpainted by
latent diffusion -> renders of the avatar at any pose.

The chain, one function (or :class:`NeuralAvatarPipeline` method) per phase, each with a typed result:

1. SMPL-X params -> camera-space vertices (``body_vertices``) -> ``verts @ K^T`` (``project_vertices``);
2. crop to the network size (``dinar_core.avatar.dataset.prepare_sample``);
3. rasterised UV map of the UV-split mesh (``render_uv``);
4. photo colours and normal angles sampled into texture space with DINAR's splatting (``sample_values_by_uv``,
   ``normal_angle_image``);
5. encoder (masked photo + mask + noise -> style) -> generator (style -> 16-channel texture);
6. the 21-channel neural texture (16 + RGB + known mask + inpaint ring, ``assemble_ntexture``);
7. VQ encode -> masked DDIM inpainting -> VQ decode with the known texels copied back
   (``DinarModel.inpaint_texture``, the one inpainting path);
8. the neural renderer at any pose (SMPL-X forward with new pose parameters, same K), RGB + mask.

Every random number (encoder noise, generator noise, DDIM) comes from one ``torch.Generator``, so a run with a
seed is reproducible (bit-identical on the CPU).
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Protocol

import torch
import torch.nn.functional as F

from dinar_core.avatar.config import NeuralAvatarConfig
from dinar_core.avatar.dataset import DinarSample
from dinar_core.body.base import UVLayout
from dinar_core.diffusion.ddim import DDIMConfig
from dinar_core.nets.dinar import DinarModel
from dinar_core.nets.renderer import RenderOutput, composite, transparency
from dinar_core.render import RasterizerConfig, UVRender, apply_K, interpolate, rasterize, render_uv

# --------------------------------------------------------------------------------------------------------- geometry


class PosableBody(Protocol):
    """What the pipeline needs of a body model (SMPLXBody fits): ``faces`` (F, 3) and ``forward(params)`` with
    ``.vertices`` (B, V, 3)."""

    faces: torch.Tensor

    def __call__(self, params): ...


def body_vertices(body: PosableBody, params) -> torch.Tensor:
    """Camera-space vertices (B, V, 3) of the body for `params` (DINAR: SMPL-X with the camera translation)."""
    return body(params).vertices


def project_vertices(verts_cam: torch.Tensor, K: torch.Tensor, vertex_index: torch.Tensor | None = None) -> torch.Tensor:
    """``verts @ K^T`` -> (B, V, 3) homogeneous pixel coordinates, then the UV-split vertices ``[:, vertex_index]``.

    verts_cam: (B, V, 3); K: (3, 3) or (B, 3, 3); vertex_index: (U,) (DINAR's v_inds) or None.
    """
    verts = apply_K(verts_cam, K)  # (B, V, 3)
    if vertex_index is not None:
        verts = verts[:, vertex_index.to(verts.device)]  # (B, U, 3)
    return verts


def derive_vertex_index(uv_faces: torch.Tensor, faces: torch.Tensor, num_uv_verts: int) -> torch.Tensor:
    """DINAR's ``v_inds`` from the two face lists: face i is the same triangle in both, so UV vertex
    ``uv_faces[i, k]`` belongs to mesh vertex ``faces[i, k]``.

    uv_faces: (F, 3) into the U UV vertices; faces: (F, 3) into the mesh. Returns (U,) int64. Raises ValueError
    when the face lists do not describe the same triangles (a UV vertex mapped to two mesh vertices).
    """
    if uv_faces.shape != faces.shape:
        raise ValueError(f"derive_vertex_index: uv_faces {tuple(uv_faces.shape)} and the body's faces "
                         f"{tuple(faces.shape)} differ; the UV layout is not for this body model")
    uf, f = uv_faces.reshape(-1).long().cpu(), faces.reshape(-1).long().cpu()
    index = torch.full((num_uv_verts,), -1, dtype=torch.int64)
    index[uf] = f
    if (index < 0).any() or not torch.equal(index[uf], f):
        raise ValueError("derive_vertex_index: the UV layout's faces do not match the body's faces (a UV vertex "
                         "has no face or lies on two different mesh vertices); use the UV assets made for this body")
    return index


def rotate_about_centroid(verts_pix: torch.Tensor, K: torch.Tensor, angle: float) -> torch.Tensor:
    """DINAR's ``rotate_verts``: rotate the mesh by `angle` radians about the vertical (y) axis through its vertex
    mean in camera space. verts_pix: (B, V, 3) homogeneous pixels; K: (B, 3, 3) or (3, 3) -> (B, V, 3)."""
    Kb = K if K.ndim == 3 else K[None]
    cam = verts_pix @ torch.linalg.inv(Kb).transpose(1, 2)  # (B, V, 3)
    c, s = math.cos(angle), math.sin(angle)
    R = torch.tensor([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]], dtype=cam.dtype, device=cam.device)
    mean = cam.mean(dim=1, keepdim=True)
    return ((cam - mean) @ R.T + mean) @ Kb.transpose(1, 2)


def binary_uv_map(uv: torch.Tensor, uv_faces: torch.Tensor, texture_size: int) -> torch.Tensor:
    """The UV layout's coverage in texture space (DINAR ships it as SMPLX-mesh-neutral.png): 1 where a UV
    triangle covers the texel centre. uv: (U, 2) in [0, 1] (v down); uv_faces: (F, 3). Returns (1, 1, T, T)."""
    pts = torch.cat([uv.float() * texture_size, torch.ones(uv.shape[0], 1)], dim=1)[None]  # (1, U, 3), z = 1
    frags = rasterize(pts, uv_faces.long(), (texture_size, texture_size), RasterizerConfig(backend="torch",
                                                                                        cull_backfaces=False))
    return frags.mask.float()


def vertex_normals(verts_pix: torch.Tensor, K: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """DINAR's ``calc_normals``: area-weighted vertex normals in camera space, pointing towards the camera on the
    visible side (the negated right-hand normal of DINAR's winding), normalised.

    verts_pix: (B, V, 3) homogeneous pixels; K: (B, 3, 3) or (3, 3); faces: (F, 3). Returns (B, V, 3).
    """
    Kb = K if K.ndim == 3 else K[None]
    cam = verts_pix @ torch.linalg.inv(Kb).transpose(1, 2)  # (B, V, 3)
    f = faces.long().to(cam.device)
    a, b, c = cam[:, f[:, 0]], cam[:, f[:, 1]], cam[:, f[:, 2]]  # (B, F, 3)
    face_n = torch.cross(c - b, b - a, dim=-1)  # (B, F, 3) = -(b - a) x (c - a)
    normals = torch.zeros_like(cam)
    for k in range(3):
        normals.index_add_(1, f[:, k], face_n)
    return normals / normals.norm(dim=-1, keepdim=True)


def normal_angle_image(uv_render: UVRender, normals: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Per-pixel ``clip(n . (0, 0, 1), 0, 1)`` of the interpolated vertex normals (DINAR's ``_render_normal_map``),
    zero off the body. normals: (B, V, 3) of the rasterised mesh; faces: its (F, 3). Returns (B, 1, H, W)."""
    nmap = interpolate(uv_render.fragments, faces, normals)  # (B, 3, H, W)
    covered = (nmap > 0).any(dim=1, keepdim=True)  # DINAR's colour rasterizer keeps pixels with a positive channel
    return (nmap[:, 2:3] * covered).clamp(0.0, 1.0)


# ------------------------------------------------------------------------------------------------------ splatting


@dataclass
class TexelSamples:
    """Values sampled from an image into texture space (DINAR's ``sample_values_by_uv``).

    values: (B, C, T, T) float32 holding the uint8 texel values 0..255 (DINAR divides by 255 afterwards).
    known: (B, 1, T, T) 0/1, texels hit by a pixel, dilated 3x3 (the texture's mask channel).
    ring: (B, 1, T, T) 0/1, the dilation ring only (known minus the exactly hit texels).
    """

    values: torch.Tensor
    known: torch.Tensor
    ring: torch.Tensor


def image_to_uint8(image: torch.Tensor, overflow_quirk: bool = False) -> torch.Tensor:
    """[-1, 1] -> DINAR's ``((x + 1) * 128).astype(uint8)`` as float32 integers 0..255.

    DINAR's cast wraps 1.0 -> 256 -> 0 (white becomes black); that happens only with ``overflow_quirk``, else
    values are clipped to 255. image: (B, C, H, W) -> same shape.
    """
    v = torch.floor((image.float() + 1) * 128)
    v = v.clamp_min(0)
    return torch.remainder(v, 256) if overflow_quirk else v.clamp_max(255)


def erode(mask: torch.Tensor, size: int) -> torch.Tensor:
    """Grey erosion with a size x size square; the image border does not erode (OpenCV's default).
    mask: (B, 1, H, W) -> same."""
    return -F.max_pool2d(-mask, kernel_size=size, stride=1, padding=size // 2)


def _last_writer(texel: torch.Tensor, order: torch.Tensor, n_texels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For each texel hit, the last pixel (largest `order`) that writes it, as numpy's fancy assignment does with
    repeated indices. texel, order: (N,) int64. Returns (texels hit (M,), winning pixel positions into N (M,))."""
    best = torch.full((n_texels,), -1, dtype=torch.int64, device=texel.device)
    best.scatter_reduce_(0, texel, order, reduce="amax")
    hit = torch.nonzero(best >= 0).squeeze(1)
    return hit, best[hit]


def sample_values_by_uv(uv: torch.Tensor, values: torch.Tensor, segm: torch.Tensor | None, texture_size: int,
                        border_row_quirk: bool = False) -> TexelSamples:
    """DINAR's splatting of image values into texture space.

    uv: (B, 2, H, W) in [-1, 1], background -10; values: (B, C, H, W) float32 integers 0..255 (see
    ``image_to_uint8``); segm: (B, 1, H, W) person mask or None. Per image:

    1. texel of each pixel: ``round((uv + 1) * T / 2)`` (half to even), clipped to [0, T - 1];
    2. pixels used: those with a nonzero texel coordinate inside the 5x5-eroded person mask;
    3. texel positions kept off the border: each coordinate clamped to [1, T - 2] (``border_row_quirk``: DINAR's
       rule, which replaces both coordinates when one is 0 or T - 1);
    4. 3x3 splat: each of the 9 offsets adds the value of the *last* pixel (row-major order) landing on the
       texel with that offset (numpy's repeated-index ``+=``), divided by the number of offsets that landed;
    5. the exactly hit texels get the value of their last pixel; truncated to integers (``astype(uint8)``).
    """
    if uv.ndim != 4 or uv.shape[1] != 2 or values.ndim != 4 or values.shape[0] != uv.shape[0] \
            or values.shape[2:] != uv.shape[2:]:
        raise ValueError(f"sample_values_by_uv: expected uv (B, 2, H, W) and values (B, C, H, W), got "
                         f"{tuple(uv.shape)} and {tuple(values.shape)}")
    T = texture_size
    B, C, H, W = values.shape
    device = uv.device
    pos_all = torch.round((uv.float() + 1) * T / 2).clamp(0, T - 1).long()  # (B, 2, H, W)
    use = (pos_all > 0).any(dim=1, keepdim=True)  # (B, 1, H, W)
    if segm is not None:
        use = use & (erode(segm.float(), 5) > 0)
    out_vals = torch.zeros(B, C, T * T, device=device)
    known = torch.zeros(B, T * T, device=device)
    exact = torch.zeros(B, T * T, device=device)
    offsets = [(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)]
    for n in range(B):
        flat = torch.nonzero(use[n, 0].reshape(-1)).squeeze(1)  # (N,) row-major pixel order
        if flat.numel() == 0:
            continue
        pos = pos_all[n].reshape(2, -1)[:, flat].T.clone()  # (N, 2) = (u, v)
        if border_row_quirk:
            pos[pos[:, 0] == 0] = 1
            pos[pos[:, 1] == 0] = 1
            pos[pos[:, 0] == T - 1] = T - 2
            pos[pos[:, 1] == T - 1] = T - 2
        else:
            pos = pos.clamp(1, T - 2)
        vals = values[n].reshape(C, -1)[:, flat].float()  # (C, N)
        order = torch.arange(flat.numel(), device=device)
        total = torch.zeros(C, T * T, device=device)
        count = torch.zeros(T * T, device=device)
        for i, j in offsets:
            texel = (pos[:, 1] + i) * T + (pos[:, 0] + j)
            hit, win = _last_writer(texel, order, T * T)
            total[:, hit] += vals[:, win]
            count[hit] += 1
        grid = torch.where(count > 0, total / count.clamp_min(1), torch.zeros_like(total))
        hit, win = _last_writer(pos[:, 1] * T + pos[:, 0], order, T * T)
        grid[:, hit] = vals[:, win]
        out_vals[n] = torch.floor(grid)
        known[n] = (count > 0).float()
        exact[n, hit] = 1.0
    shape = (B, 1, T, T)
    return TexelSamples(values=out_vals.view(B, C, T, T), known=known.view(shape),
                        ring=(known - exact).view(shape))


@dataclass
class PixelTexture:
    """What the photo gives in texture space.

    rgb: (B, 3, T, T) in [0, 1] sampled colours; known: (B, 1, T, T) 3x3-dilated known texels; ring: (B, 1, T, T)
    the dilation ring; normal_angles: (B, 1, T, T) in [0, 1], how squarely each known texel faced the camera.
    """

    rgb: torch.Tensor
    known: torch.Tensor
    ring: torch.Tensor
    normal_angles: torch.Tensor


def photo_to_texture(input_rgb: torch.Tensor, real_segm: torch.Tensor, verts: torch.Tensor, K: torch.Tensor,
                     uv: UVRender, uv_faces: torch.Tensor, config: NeuralAvatarConfig) -> PixelTexture:
    """Step 4: the photo's colours and normal angles splatted into texture space (DINAR's ``sample_values_by_uv``).

    input_rgb: (B, 3, S, S) in [-1, 1]; real_segm: (B, 1, S, S); verts: (B, U, 3) crop pixels; K: (B, 3, 3);
    uv: the UV render of the view; uv_faces: (F, 3) -> PixelTexture at ``config.texture_size``.
    """
    T = config.texture_size
    rgb8 = image_to_uint8(input_rgb, config.white_overflow_quirk)
    tex = sample_values_by_uv(uv.uv, rgb8, real_segm, T, config.border_row_quirk)
    normals = vertex_normals(verts, K, uv_faces)
    angles8 = torch.floor(normal_angle_image(uv, normals, uv_faces) * 255)
    angles = sample_values_by_uv(uv.uv, angles8, real_segm, T, config.border_row_quirk).values / 255
    return PixelTexture(rgb=tex.values / 255, known=tex.known, ring=tex.ring, normal_angles=angles)


def assemble_ntexture(generated: torch.Tensor, pixels: PixelTexture) -> torch.Tensor:
    """The neural texture: (B, G, T, T) generator channels + RGB + known mask + inpaint ring -> (B, G + 5, T, T)."""
    if generated.shape[0] != pixels.rgb.shape[0] or generated.shape[2:] != pixels.rgb.shape[2:]:
        raise ValueError(f"assemble_ntexture: generated {tuple(generated.shape)} does not match the sampled "
                         f"texture {tuple(pixels.rgb.shape)}")
    return torch.cat([generated, pixels.rgb.to(generated), pixels.known.to(generated), pixels.ring.to(generated)], 1)


# ------------------------------------------------------------------------------------------------------- pipeline


@dataclass
class PhaseTimes:
    """Seconds per phase of a run (name -> seconds, summed over repeated calls) and call counts."""

    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str, sync: torch.device | None = None) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if sync is not None and sync.type == "cuda":
                torch.cuda.synchronize(sync)
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
            self.calls[name] = self.calls.get(name, 0) + 1


@dataclass
class NeuralAvatar:
    """Result of :meth:`NeuralAvatarPipeline.run` (batch B; DINAR's data_dict keys in brackets).

    ntexture: (B, 21, T, T) final texture: source texels where seen, diffusion elsewhere ['ntexture'].
    diffusion_ntexture: (B, 21, T, T) VQ-decoded diffusion sample ['diffusion_ntexture'].
    source_ntexture: (B, 21, T, T) the texture built from the photo, before inpainting.
    mask: (B, 1, T, T) copy-back weight ['mask']; normal_angles: (B, 1, T, T) ['normal_angles'].
    style: (B, D) encoder output; latent: (B, 6, t, t) sampled latent.
    render: the input view rendered from the final texture ['fake_rgb', 'fake_segm'].
    verts: (B, U, 3) crop-pixel homogeneous vertices ['verts']; K: (B, 3, 3) ['calibration_matrix'].
    uv: the input view's UV render. times: seconds per phase.
    """

    ntexture: torch.Tensor
    diffusion_ntexture: torch.Tensor
    source_ntexture: torch.Tensor
    mask: torch.Tensor
    normal_angles: torch.Tensor
    style: torch.Tensor
    latent: torch.Tensor
    render: RenderOutput
    verts: torch.Tensor
    K: torch.Tensor
    uv: UVRender
    times: PhaseTimes


@dataclass
class VideoFrame:
    """rgb: (H, W, 3) uint8 frame; alpha: (H, W) float32 in [0, 1], the mask used to composite it."""

    rgb: torch.Tensor
    alpha: torch.Tensor


def to_frame(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8 as DINAR's video maker: ``((x + 1) / 2 * 255)`` truncated."""
    return ((rgb.detach().float().clamp(-1, 1) + 1) / 2 * 255).to(torch.uint8).permute(0, 2, 3, 1).cpu()


class NeuralAvatarPipeline:
    """DINAR's texture pipeline over injected parts.

    model: a DinarModel (encoder, generator, compress_branch, unet, renderer, schedule), eval mode.
    layout: the UV layout (uv (U, 2), uv_faces (F, 3), vertex_index (U,)) whose faces the renderer rasterises.
    config: sizes and options. uv_coverage: (1, 1, T, T) DINAR's binary UV map; rasterised from the layout when
    None. rasterizer: rasterization options.
    """

    def __init__(self, model: DinarModel, layout: UVLayout, config: NeuralAvatarConfig,
                 uv_coverage: torch.Tensor | None = None, rasterizer: RasterizerConfig | None = None,
                 device: torch.device | None = None):
        self.config = config
        self.device = device or next(model.parameters()).device
        self.model = model.eval()
        self.layout = UVLayout(layout.uv.to(self.device), layout.uv_faces.to(self.device),
                               layout.vertex_index.to(self.device))
        T = config.texture_size
        cov = uv_coverage if uv_coverage is not None else binary_uv_map(layout.uv.cpu(), layout.uv_faces.cpu(), T)
        if tuple(cov.shape) != (1, 1, T, T):
            raise ValueError(f"uv_coverage must be (1, 1, {T}, {T}), got {tuple(cov.shape)}")
        self.uv_coverage = cov.float().to(self.device)
        self.rasterizer = rasterizer or RasterizerConfig()

    def generator(self, seed: int | None = None) -> torch.Generator:
        """The run's random source (on the CPU, so the numbers do not depend on the device)."""
        return torch.Generator().manual_seed(self.config.seed if seed is None else seed)

    # 3. rasterised UV map
    def rasterize(self, verts: torch.Tensor) -> UVRender:
        """verts: (B, U, 3) homogeneous crop pixels of the UV-split mesh -> its UV render at image_size."""
        s = self.config.image_size
        return render_uv(verts.to(self.device), self.layout.uv_faces, self.layout.uv, (s, s), config=self.rasterizer)

    # 4. photo -> texture space
    def sample_pixels(self, input_rgb: torch.Tensor, real_segm: torch.Tensor, verts: torch.Tensor, K: torch.Tensor,
                      uv: UVRender) -> PixelTexture:
        """input_rgb: (B, 3, S, S) in [-1, 1]; real_segm: (B, 1, S, S); verts: (B, U, 3); K: (B, 3, 3)."""
        d = self.device
        return photo_to_texture(input_rgb.to(d), real_segm.to(d), verts.to(d), K.to(d), uv, self.layout.uv_faces,
                                self.config)

    # 5. encoder and generator
    @torch.no_grad()
    def encode(self, input_rgb: torch.Tensor, real_segm: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B, 3, S, S), (B, 1, S, S) -> style (B, D); the noise plane is drawn from `generator`."""
        return self.model.encoder(input_rgb.to(self.device), real_segm.to(self.device), generator=generator)

    @torch.no_grad()
    def generate(self, style: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """style (B, D) -> (B, G, T, T) generator texture."""
        return self.model.generator(style, randomize_noise=self.config.randomize_generator_noise, generator=generator)

    # 8. render
    @torch.no_grad()
    def render(self, ntexture: torch.Tensor, uv: UVRender, segm_threshold: float | None = None) -> RenderOutput:
        """The neural renderer on a UV render (white background)."""
        return self.model.renderer(ntexture.to(self.device), uv.uv, uv.mask, segm_threshold=segm_threshold)

    @torch.no_grad()
    def run(self, sample: DinarSample | list[DinarSample], generator: torch.Generator | None = None) -> NeuralAvatar:
        """The whole chain on prepared samples (see ``dataset.prepare_sample``)."""
        samples = [sample] if isinstance(sample, DinarSample) else list(sample)
        gen = generator if generator is not None else self.generator()
        cfg, dev, times = self.config, self.device, PhaseTimes()
        stack = lambda name: torch.stack([getattr(s, name) for s in samples]).to(dev)  # noqa: E731
        verts, K = stack("verts"), stack("K")
        input_rgb, real_segm = stack("input_rgb"), stack("real_segm")
        with times.phase("rasterize", dev):
            uv = self.rasterize(verts)
        with times.phase("splat", dev):
            pixels = self.sample_pixels(input_rgb, real_segm, verts, K, uv)
        with times.phase("encoder", dev):
            style = self.encode(input_rgb, real_segm, gen)
        with times.phase("generator", dev):
            generated = self.generate(style, gen)
        source = assemble_ntexture(generated, pixels)  # (B, 21, T, T)
        # 7. VQ encode -> condition -> DDIM with the known latent imposed -> VQ decode -> copy-back.
        ddim = DDIMConfig(steps=cfg.ddim_steps, eta=cfg.ddim_eta, dtype=cfg.ddim_dtype)
        inpainted = self.model.inpaint_texture(source, self.uv_coverage, ddim=ddim, generator=gen,
                                               timer=lambda name: times.phase(name, dev))
        with times.phase("render", dev):
            render = self.render(inpainted.ntexture, uv)
        return NeuralAvatar(ntexture=inpainted.ntexture, diffusion_ntexture=inpainted.diffusion_ntexture,
                            source_ntexture=source, mask=inpainted.mask, normal_angles=pixels.normal_angles,
                            style=style, latent=inpainted.latent, render=render, verts=verts, K=K, uv=uv,
                            times=times)

    # 8. any pose
    def posed_vertices(self, body: PosableBody, params, K: torch.Tensor) -> torch.Tensor:
        """SMPL-X forward with new parameters, the avatar's crop K: -> (B, U, 3) homogeneous crop pixels."""
        verts = body_vertices(body, params).to(self.device)
        return project_vertices(verts, K.to(self.device), self.layout.vertex_index)

    def frames(self, ntexture: torch.Tensor, vertex_frames: Iterator[torch.Tensor]) -> Iterator[VideoFrame]:
        """Render one frame per (1, U, 3) vertex set with DINAR's video settings (threshold 0.5, exponential
        transparency, white background)."""
        v = self.config.video
        for verts in vertex_frames:
            with torch.no_grad():
                uv = self.rasterize(verts)
                out = self.model.renderer.predict(ntexture.to(self.device), uv.uv, uv.mask)
                alpha = transparency(out.segm, v.segm_threshold, v.exponential_transparency)
                rgb = composite(out.foreground, alpha, torch.ones_like(out.foreground[:, :3]))
            yield VideoFrame(rgb=to_frame(rgb)[0], alpha=alpha[0, 0].cpu())

    def turntable(self, verts: torch.Tensor, K: torch.Tensor, num_frames: int) -> Iterator[torch.Tensor]:
        """DINAR's rotation video: frame i rotates the input-view vertices by 2 pi i / num_frames about the
        vertical axis through their mean. verts: (1, U, 3); K: (1, 3, 3)."""
        for i in range(num_frames):
            yield rotate_about_centroid(verts.to(self.device), K.to(self.device), 2 * math.pi * i / num_frames)

    def turntable_frame_count(self) -> int:
        v = self.config.video
        n = max(1, int(round(v.fps * v.turntable_seconds)))
        return min(n, v.max_frames) if v.max_frames else n
