"""Sessions on disk (record, replay) and mesh files for other tools (export).

A session is a folder: `video.avi` (the frames as seen) and `session.sqlite` (everything the
model said about each frame). See handviz.io.session and handviz.io.export.
"""
