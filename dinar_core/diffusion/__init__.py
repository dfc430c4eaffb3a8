"""Diffusion schedule, DDIM sampling with known-region replacement, and the texture copy-back of DINAR."""
