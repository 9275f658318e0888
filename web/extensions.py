"""The Flask extensions, made once and bound to the app in create_app (Flask's usual pattern).

Rate limits count per address or per account, in memory (one server process) or in Redis when
SEARCH_PARTY_REDIS_URL is set (every web process shares the count), and are named here so every
blueprint uses the same figures:

    from web.extensions import limiter, REPORT_LIMIT
    @bp.post("/reports/new")
    @limiter.limit(REPORT_LIMIT, key_func=user_or_address)
"""

from __future__ import annotations

import hashlib

from flask import request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect

SIGN_IN_LIMIT = "10 per minute;50 per hour"  # per address
SIGN_IN_PER_ACCOUNT_LIMIT = "20 per hour"  # per e-mail tried, whoever tries it
SIGN_UP_LIMIT = "10 per hour"
RESET_LIMIT = "5 per hour"
REPORT_LIMIT = "10 per hour"  # lost and found report creation, per account
UPLOAD_LIMIT = "60 per minute;1000 per hour"  # clip uploads, per account or upload token

csrf = CSRFProtect()
login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def user_or_address() -> str:
    """Rate-limit key: the upload token sent (limits run before the API checks it), else the
    signed-in account, else the address."""
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and secret:
        return "token:" + hashlib.sha256(secret.strip().encode()).hexdigest()[:32]
    if current_user.is_authenticated:
        return f"user:{current_user.id}"
    return f"addr:{get_remote_address()}"


def email_tried() -> str:
    """Rate-limit key for sign-in attempts against one account, from any address."""
    return "sign-in:" + (request.form.get("email") or "").strip().lower()[:254]
