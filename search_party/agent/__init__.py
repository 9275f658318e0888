"""The camera side: programs that run where a camera's footage lands and send clips to a server.
They never load the vision stack and never touch the store.
May import: search_party.errors, search_party.clip_types, the standard library (and PyAV)."""
