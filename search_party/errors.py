"""Errors the user caused and can fix: the CLI prints them in one line, the web app as a 4xx."""


class UserError(Exception):
    """Bad input or a missing prerequisite, with a message that says what to do next."""
