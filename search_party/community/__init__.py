"""The people and their rules: accounts, cameras and opt-in, lost and found reports, searches that
keep looking, consent, the relay, notifications, activity logs, abuse limits and retention.
May import: search_party.search, search_party.store, search_party.vision, search_party.errors."""
