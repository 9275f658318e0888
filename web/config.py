"""The web app's Flask configuration, made from the validated settings (search_party.config).

The secret key signs the session cookie and CSRF tokens.  It is REQUIRED in production
(SEARCH_PARTY_SECRET_KEY: a long random value, e.g. `python -c "import secrets;
print(secrets.token_hex(32))"`).  A local run (dev mode: `search-party serve` on a loopback
address, or SEARCH_PARTY_DEV=1) without it makes one and keeps it, owner-only, in
DATA_DIR/secret_key, so sessions survive a restart.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from search_party.config import Settings
from search_party.errors import UserError

SECRET_FILE = "secret_key"


def _dev_secret(data_dir: Path) -> str:
    path = data_dir / SECRET_FILE
    if path.is_file():
        return path.read_text().strip()
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key)
    return key


def _secret_key(settings: Settings, testing: bool, dev: bool) -> str:
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    if testing:
        return secrets.token_hex(32)
    if dev:
        return _dev_secret(settings.data_dir)
    raise UserError("SEARCH_PARTY_SECRET_KEY is not set: the server needs a secret to sign sessions. "
                    'Set it to a long random value (python -c "import secrets; print(secrets.token_hex(32))"), '
                    "or run on 127.0.0.1 / with SEARCH_PARTY_DEV=1 for a local trial")


def web_config(settings: Settings, *, testing: bool = False, dev: bool = False) -> dict[str, Any]:
    """Flask config for these settings; raises UserError when the secret key is missing."""
    dev = dev or settings.dev
    secure = settings.cookies_secure
    return {
        "SETTINGS": settings,
        "TESTING": testing,
        "DEV": dev,
        "SECRET_KEY": _secret_key(settings, testing, dev),
        "PUBLIC_URL": settings.public_url,
        "MAX_CONTENT_LENGTH": settings.max_upload_bytes,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": secure,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": secure,
        "HSTS": secure,
        "TILE_URL": settings.tile_url,
        "TILE_ATTRIBUTION": settings.tile_attribution,
        "RATELIMIT_ENABLED": settings.rate_limits,
        # Several web processes (serve --processes) share one count through Redis; one counts in
        # memory.  While Redis is away each process counts in its own memory: limits still hold.
        "RATELIMIT_STORAGE_URI": settings.redis_url or "memory://",
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_HEADERS_ENABLED": True,
        "WTF_CSRF_TIME_LIMIT": None,  # a token lives as long as the session (a slow form still works)
        # Queue each uploaded clip for the worker (tests of status alone may run clips themselves).
        "ENQUEUE_CLIPS": True,
    }
