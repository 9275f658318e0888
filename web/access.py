"""Who is signed in, and the decorators that guard routes.

- ``login_required`` (Flask-Login): pages redirect to /login?next=...; /api/ answers 401 JSON.
- ``role_required("admin")`` / ``role_required("shelter")``: after login_required; others get 403.
- Ownership is never checked here: every search_party function that reads or changes something
  takes the acting user's id and refuses what is not theirs (NotFound or Forbidden).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import abort, jsonify, redirect, request, url_for
from flask_login import UserMixin, current_user, login_required

from search_party.community import accounts
from web.db import get_db
from web.extensions import login_manager

__all__ = ["SignedInUser", "login_required", "role_required", "current_user_id", "safe_next"]


class SignedInUser(UserMixin):
    """The account behind the session, loaded fresh on each request.  The session holds the
    account's id *and* its session key, so a deleted account, a password change or a reset
    signs the session out on its next request, on every device."""

    def __init__(self, account: accounts.Account) -> None:
        self.account = account
        self.id = account.id
        self.email = account.email
        self.role = account.role
        self.display_name = account.display_name

    def get_id(self) -> str:
        return f"{self.account.id}:{self.account.session_key}"


@login_manager.user_loader
def load_user(session_id: str) -> SignedInUser | None:
    user_id, _, session_key = session_id.partition(":")
    if not user_id.isdigit() or not session_key:  # a cookie from before session keys: signed out
        return None
    account = accounts.signed_in_account(get_db(), int(user_id), session_key)
    return SignedInUser(account) if account is not None else None


@login_manager.unauthorized_handler
def unauthorized() -> Any:
    if request.path.startswith("/api/"):
        return jsonify(error="sign in first (or send an upload token for clip uploads)"), 401
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def current_user_id() -> int:
    return int(current_user.id)


def role_required(*roles: str) -> Callable:
    def decorator(view: Callable) -> Callable:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)
        return wrapped
    return decorator


def safe_next(target: str | None) -> str | None:
    """A redirect target from ?next= only if it stays on this site (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    # Control characters and whitespace never belong in a path of ours; a CR/LF would also break
    # the Location header (a 500), and browsers strip tabs/newlines, turning "/\t/x" into "//x".
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target
