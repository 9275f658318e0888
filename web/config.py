"""The web app's settings, from the environment, checked once at start-up.

SEARCH_PARTY_SECRET_KEY   signs the session cookie and CSRF tokens.  REQUIRED in production: a
                          long random value, e.g. `python -c "import secrets; print(secrets.token_hex(32))"`.
                          A local run (dev mode: `search-party serve` on a loopback address, or
                          SEARCH_PARTY_DEV=1) without it makes one and keeps it in DATA_DIR/secret_key.
SEARCH_PARTY_PUBLIC_URL   the address people use to reach the site, for links in e-mails
                          (password reset); `serve` defaults it to http://HOST:PORT.
SEARCH_PARTY_SECURE_COOKIES=1   cookies only over HTTPS (set it whenever the site is served over
                          HTTPS, e.g. behind a TLS proxy); also turns on HSTS.
SEARCH_PARTY_MAX_UPLOAD_MB  the largest request (one clip upload), default 200.
SEARCH_PARTY_TILE_URL     map tiles, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png; unset,
                          maps show no background and places are typed or clicked by hand.
SEARCH_PARTY_TILE_ATTRIBUTION   the credit line the tile provider asks for.
SEARCH_PARTY_RATE_LIMITS=off   turns rate limits off (load tests only).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from search_party.config import Settings
from search_party.errors import UserError

DEFAULT_MAX_UPLOAD_MB = 200
SECRET_FILE = "secret_key"
_TRUE = ("1", "true", "yes", "on")


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in _TRUE


def _dev_secret(data_dir: Path) -> str:
    """A key made once for a local run and kept (owner-only) in the data folder, so sessions
    survive a restart."""
    path = data_dir / SECRET_FILE
    if path.is_file():
        return path.read_text().strip()
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key)
    return key


def _secret_key(env: Mapping[str, str], settings: Settings, testing: bool, dev: bool) -> str:
    key = env.get("SEARCH_PARTY_SECRET_KEY", "").strip()
    if key:
        if len(key) < 32:
            raise UserError("SEARCH_PARTY_SECRET_KEY is too short: use at least 32 random characters, "
                            'e.g. python -c "import secrets; print(secrets.token_hex(32))"')
        return key
    if testing:
        return secrets.token_hex(32)
    if dev:
        return _dev_secret(settings.data_dir)
    raise UserError("SEARCH_PARTY_SECRET_KEY is not set: the server needs a secret to sign sessions. "
                    'Set it to a long random value (python -c "import secrets; print(secrets.token_hex(32))"), '
                    "or run on 127.0.0.1 / with SEARCH_PARTY_DEV=1 for a local trial")


def _max_upload_bytes(env: Mapping[str, str]) -> int:
    raw = env.get("SEARCH_PARTY_MAX_UPLOAD_MB", "").strip()
    if not raw:
        return DEFAULT_MAX_UPLOAD_MB * 1024 * 1024
    try:
        megabytes = float(raw)
    except ValueError:
        megabytes = 0
    if not 0 < megabytes <= 10_000:
        raise UserError(f"SEARCH_PARTY_MAX_UPLOAD_MB={raw!r} must be a number of megabytes, 1 to 10000")
    return int(megabytes * 1024 * 1024)


def _http_url(env: Mapping[str, str], name: str) -> str | None:
    url = env.get(name, "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(f"{name}={url!r} must be an http:// or https:// address")
    return url


def _tile_url(env: Mapping[str, str]) -> str | None:
    url = _http_url(env, "SEARCH_PARTY_TILE_URL")
    if url is not None and not all(part in url for part in ("{z}", "{x}", "{y}")):
        raise UserError(f"SEARCH_PARTY_TILE_URL={url!r} needs {{z}}, {{x}} and {{y}} placeholders, e.g. "
                        "https://tile.openstreetmap.org/{z}/{x}/{y}.png")
    return url


def web_config(settings: Settings, *, env: Mapping[str, str] | None = None, testing: bool = False,
               dev: bool = False) -> dict[str, Any]:
    """Flask config for these settings; raises UserError naming the variable that is wrong."""
    env = os.environ if env is None else env
    dev = dev or _flag(env, "SEARCH_PARTY_DEV")
    secure = _flag(env, "SEARCH_PARTY_SECURE_COOKIES")
    tile_url = _tile_url(env)
    return {
        "SETTINGS": settings,
        "TESTING": testing,
        "DEV": dev,
        "SECRET_KEY": _secret_key(env, settings, testing, dev),
        "PUBLIC_URL": _http_url(env, "SEARCH_PARTY_PUBLIC_URL"),
        "MAX_CONTENT_LENGTH": _max_upload_bytes(env),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": secure,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": secure,
        "HSTS": secure,
        "TILE_URL": tile_url,
        "TILE_ATTRIBUTION": env.get("SEARCH_PARTY_TILE_ATTRIBUTION", "").strip(),
        "RATELIMIT_ENABLED": env.get("SEARCH_PARTY_RATE_LIMITS", "").strip().lower() != "off",
        "RATELIMIT_STORAGE_URI": "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        "WTF_CSRF_TIME_LIMIT": None,  # a token lives as long as the session (a slow form still works)
        # Queue each uploaded clip for the worker (tests of status alone may run clips themselves).
        "ENQUEUE_CLIPS": True,
    }
