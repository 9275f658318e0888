"""From a volunteered clip to stored sightings: uploads, the spool, the queue and worker, and the
pipeline (video decoding, sampling, motion, detection, tracking, embedding).
May import: search_party.community, search_party.search, search_party.store, search_party.vision."""
