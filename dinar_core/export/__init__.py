"""Outputs a user keeps: MP4 video (PyAV, imageio-ffmpeg fallback) and a skinned, textured, animatable GLB."""
