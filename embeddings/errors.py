"""What the vision package refuses, as exceptions with a sentence a person can act on.

Kept free of heavy imports, so the domain can name these errors without loading any model.
"""


class ModelError(RuntimeError):
    """A model file is missing or is not the file we pinned."""


class ModelNotFound(ModelError):
    pass


class ModelChecksumError(ModelError):
    pass


class ImageError(ValueError):
    """The input is not a picture we can use; the message says why and what to do."""
