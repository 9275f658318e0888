"""`python -m search_party.cli`: the same as the `search-party` command."""

from search_party.cli import main

main()
