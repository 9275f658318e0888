"""Search Party: the domain (cameras, clips, sightings, searches, consent, geofence, matching)."""

__version__ = "0.1.0"
