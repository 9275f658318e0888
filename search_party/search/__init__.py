"""The matcher: the geofence, coarse public places, query photos, scores, thresholds and the
candidates a search finds among stored sightings.  It asks nobody and stores nothing itself.
May import: search_party.store, search_party.errors, embeddings."""
