"""Training of the cascade's nets: data from shards, one loop for all stages, one module per stage.

stage1 (crop encoder + joint denoiser), autoencoder (mesh AE), mesh_ldm (latent denoiser on top
of both). Run them with `handviz train ...`; the weights land in handviz.diffusion.weights' format.
"""
