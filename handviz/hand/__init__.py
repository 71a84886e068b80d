"""Open, rigged hand model: template asset, MediaPipe-order skeleton, LBS, limits and pose prior.

Import the submodules directly. `asset` is numpy-only (the Qt app reads faces from it);
`kinematics` and `articulation`'s torch functions need torch, so this package file
deliberately imports nothing.
"""
