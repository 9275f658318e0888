"""The pet-only vision model: images in, pet boxes and identity vectors out.

Knows nothing of search_party. Person boxes leave this package only through the redaction call.
"""
