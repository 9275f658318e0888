"""Measurement and demonstration: search evaluation, search and load benchmarks, the privacy
audit and the demo neighbourhood.  Nothing at run time imports it.
May import: every other part of search_party, and embeddings."""
