"""The errors of session files: a folder that cannot be written or read, a damaged frame."""

from __future__ import annotations

from handviz.logs import InputError


class SessionError(InputError):
    """A session folder that cannot be written or read; the message names it and what to do."""


class SessionDamagedError(SessionError):
    """One frame of an otherwise readable session cannot be read back."""
