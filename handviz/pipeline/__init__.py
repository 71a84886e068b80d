"""Capture, detection and inference threads (no Qt): sources, MediaPipe detector, worker, timing."""
