"""From a volunteered clip to stored sightings: uploads, the spool, the queue and worker (here or
remote), and the pipeline (video decoding, sampling, motion, detection, tracking, embedding).
May import: search_party.community, search, store, vision, and agent.client (a remote worker's HTTP)."""
