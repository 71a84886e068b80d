"""handviz: live probabilistic 3D hand meshes from a webcam (MediaPipe + cascaded diffusion)."""

__version__ = "0.1.0"
