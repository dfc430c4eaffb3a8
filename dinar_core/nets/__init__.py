"""DINAR's networks in pure PyTorch, sized by config dataclasses (defaults = DINAR's sizes).

* ``ops``: StyleGAN2 building blocks (upfirdn2d, blur, fused bias + leaky ReLU, equalised-lr layers,
  modulated convolution).
* ``stylegan2``: the image -> style ``Encoder``, the style -> neural texture ``Generator`` and the ``Discriminator``.
* ``renderer``: the pix2pix ``NeuralRenderer`` (neural texture + UV map -> RGB + mask).
* ``vq``, ``unet``: the texture autoencoder and the diffusion denoiser.

Parameter names follow DINAR's checkpoint so it loads with strict key matching (see ``dinar_core.compat``).
"""
