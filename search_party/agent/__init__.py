"""The camera side: agents that run where a camera's footage is (a folder, an RTSP camera, Frigate)
and send clips to a server.  They never load the vision stack and never touch the store.
May import: search_party.errors, .clip_types, .config, .motion, the standard library, PyAV, paho-mqtt."""
