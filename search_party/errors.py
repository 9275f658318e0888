"""Errors a user or operator can act on: the CLI prints them in one line, the web app as a 4xx.

``ImageError`` (a file that is not a usable picture) and ``ModelError`` (a model file missing or
altered) are the vision package's; they are named here too, so outer layers (web/, the CLI) reach
vision only through the domain.
"""

from embeddings.errors import ImageError, ModelError

__all__ = ["Forbidden", "ImageError", "InsufficientStorage", "ModelError", "NotFound", "UserError"]


class UserError(Exception):
    """Bad input or a missing prerequisite, with a message that says what to do next."""


class NotFound(UserError):
    """A camera, clip, user, report or sighting id that does not exist (or is not the caller's:
    the two are one answer, so nobody can probe which ids exist)."""


class Forbidden(UserError):
    """The user is signed in but may not do this (not theirs, or not their role)."""


class InsufficientStorage(UserError):
    """The server is too short of disk space to store what was sent (search_party/disk_space.py);
    nothing was stored, and sending it again later may work."""
