"""Training DINAR's networks (DINAR released inference only): the texture sets training reads, the phases as
PyTorch Lightning modules, and one trainer factory for every phase (`dinar train PHASE`).

Built so far: the latent-diffusion phase (DINAR's third) on texture sets. The first stage (encoder + generator +
renderer on multi-view photos) and the VQ autoencoder phase come next; see the README's Training section.
"""
