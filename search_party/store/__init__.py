"""The store: SQLite (the source of truth, vectors included), its migrations, the clip and
sighting records, the FAISS index rebuilt from it, and backups.
May import: search_party.errors, search_party.config, embeddings (vector maths only)."""
