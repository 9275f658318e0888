"""Every setting in one validated object, read from ``SEARCH_PARTY_*`` environment variables.

``load_settings()`` reads and checks them all at start-up: a bad value stops the program with one
line naming the variable and what it must be (``search-party config`` prints the effective
settings, secrets masked).  Nothing else in the project reads a ``SEARCH_PARTY_*`` variable.
The server's settings (``Settings``) and the camera-side agent's (``AgentSettings``) are separate:
a neighbour's machine needs none of the server's, and the server none of the agent's.

Importing this module loads no vision code (the detector names come from the model registry,
which is plain Python).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from embeddings.registry import DETECTORS
from embeddings.runtime import DEFAULT_MODEL_DIR, Runtime
from search_party.errors import UserError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "SEARCH_PARTY_"
EMBEDDERS = ("trained", "imagenet")  # the re-ID head, or frozen ImageNet features (baseline)
TLS_MODES = ("starttls", "ssl", "none")
SMTP_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


# ---------------------------------------------------------------- value checks (messages name no variable:
# the error report puts "SEARCH_PARTY_X='value'" in front of them)


def _whole_number_at_least_1(value: Any) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        number = 0
    if number < 1:
        raise ValueError("must be a whole number of at least 1")
    return number


def _one_of(choices: tuple[str, ...], what: str) -> Any:
    def check(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ValueError(f"is not {what}; choose one of {', '.join(choices)}")
        return text
    return check


def _http_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// address")
    return value.rstrip("/")


def _tile_url(value: str | None) -> str | None:
    if value is None:
        return None
    _http_url(value)
    if not all(part in value for part in ("{z}", "{x}", "{y}")):
        raise ValueError("needs {z}, {x} and {y} placeholders, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png")
    return value


def _redis_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must start with redis://, rediss:// or unix://")
    return value


def _megabytes(value: Any) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        number = 0.0
    if not 0 < number <= 10_000:
        raise ValueError("must be a number of megabytes, 1 to 10000")
    return number


def _quota_megabytes(value: Any) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        number = 0.0
    if not 0 < number <= 10_000_000:
        raise ValueError("must be a number of megabytes above 0 (e.g. 2048 for 2 GB)")
    return number


def _floor_megabytes(value: Any) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        number = -1.0
    if not 0 <= number <= 10_000_000:
        raise ValueError("must be a number of megabytes, 0 or more (0 turns the check off)")
    return number


def _port(value: Any) -> int | None:
    if value is None:
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        number = 0
    if not 0 < number < 65536:
        raise ValueError("must be a port number (1-65535)")
    return number


def _time_zone(value: Any) -> str:
    from zoneinfo import ZoneInfo

    text = str(value).strip()
    try:
        ZoneInfo(text)
    except (ValueError, KeyError, OSError):
        raise ValueError("is not a time zone name such as Europe/London or UTC") from None
    return text


def _proxy_hops(value: Any) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        number = -1
    if not 0 <= number <= 5:
        raise ValueError("must be the number of reverse proxies in front of the app, 0 to 5")
    return number


def _secret_key(value: SecretStr | None) -> SecretStr | None:
    if value is not None and len(value.get_secret_value()) < 32:
        raise ValueError('is too short: use at least 32 random characters, e.g. python -c "import secrets; '
                         'print(secrets.token_hex(32))"')
    return value


def _providers(value: Any) -> tuple[str, ...]:
    names = value if isinstance(value, (list, tuple)) else str(value or "").split(",")
    return tuple(n.strip() for n in names if n.strip())


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be 1, true, yes or on (or 0, false, no, off)")


WholeNumber = Annotated[int, BeforeValidator(_whole_number_at_least_1)]
Flag = Annotated[bool, BeforeValidator(_flag)]
HttpUrl = Annotated[str | None, AfterValidator(_http_url)]


class Settings(BaseSettings):
    """The server's settings (web, worker and every command but the agent); each field is the
    variable ``SEARCH_PARTY_<FIELD>``.  Empty variables count as unset."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True,
                                      extra="ignore", validate_default=True)

    # -- where things are kept
    data_dir: Path = Field(PROJECT_ROOT / "data", description="the runtime store: database, index, spool, queue")
    db: Path | None = Field(None, description="the SQLite database (default DATA_DIR/search_party.db)")
    index: Path | None = Field(None, description="the FAISS index file (default DATA_DIR/index/sightings.faiss)")
    retention_days: WholeNumber = Field(30, description="days a new camera's sightings are kept")
    # -- the vision models
    model_dir: Path | None = Field(None, description="model files, searched before ../shared/models")
    model_cache: Path | None = Field(None, description="exported ONNX graphs (default DATA_DIR/models)")
    offline: Flag = Field(False, description="never fetch a model file: a missing one is an error (by default a "
                                             "missing file is fetched from its pinned source and verified)")
    model_mirror: HttpUrl = Field(None, description="fetch missing model files from here (base URL + file name) "
                                                    "instead of their pinned sources; verified the same way")
    detector: Annotated[str, BeforeValidator(_one_of(DETECTORS, "a detector"))] = Field(
        "picodet_s_416", description="the pet detector")
    embedder: Annotated[str, BeforeValidator(_one_of(EMBEDDERS, "an embedder"))] = Field(
        "trained", description="the re-ID embedder: trained, or the frozen imagenet baseline")
    threads: WholeNumber | None = Field(None, description="CPU threads a model may use (default: every core)")
    onnx_providers: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_providers)] = Field(
        (), description="onnxruntime execution providers, comma-separated (default: the best available)")
    # -- the queue and worker
    redis_url: Annotated[str | None, AfterValidator(_redis_url)] = Field(
        None, description="huey on Redis instead of SQLite")
    max_attempts: WholeNumber = Field(3, description="times a clip may stop its worker before it is failed")
    worker_lease_seconds: WholeNumber = Field(
        60, description="a remote worker's claim on a clip lasts this long unless renewed (it renews "
                        "every third of it); a silent worker's clip goes back to the queue")
    upkeep_seconds: WholeNumber = Field(
        60, description="how often the server's worker recovers clips, syncs the index and runs retention")
    worker_token: SecretStr | None = Field(
        None, description="a remote worker's token for the server's internal API (search-party worker-token add)")
    # -- the web app
    secret_key: Annotated[SecretStr | None, AfterValidator(_secret_key)] = Field(
        None, description="signs sessions and CSRF tokens; required unless the run is local")
    public_url: HttpUrl = Field(None, description="the address people use, for links in e-mails")
    secure_cookies: Flag = Field(False, description="cookies only over HTTPS, and HSTS (on by itself with an "
                                 "https:// PUBLIC_URL)")
    trusted_proxies: Annotated[int, BeforeValidator(_proxy_hops)] = Field(
        0, description="reverse proxies in front of the app whose X-Forwarded-For, -Proto and -Host "
                       "are believed (0: none; 1: one nginx or Caddy); needs PUBLIC_URL")
    dev: Flag = Field(False, description="a local trial: a secret key is made and kept in DATA_DIR")
    max_upload_mb: Annotated[float, BeforeValidator(_megabytes)] = Field(
        200, description="the largest request (one clip upload), in MB")
    camera_daily_upload_mb: Annotated[float, BeforeValidator(_quota_megabytes)] = Field(
        2048, description="the most one camera may upload in any 24 hours, in MB (more gets 429)")
    min_free_disk_mb: Annotated[float, BeforeValidator(_floor_megabytes)] = Field(
        1024, description="uploads are refused (507) rather than leave less free disk than this, "
                          "in MB; the worker pauses below half of it")
    tile_url: Annotated[str | None, AfterValidator(_tile_url)] = Field(
        None, description="map tiles, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png")
    tile_attribution: str = Field("", description="the credit line the tile provider asks for")
    rate_limits: Flag = Field(True, description="off only for load tests")
    time_zone: Annotated[str, BeforeValidator(_time_zone)] = Field(
        "UTC", description="the neighbourhood's time zone (e.g. Europe/London): a time typed in a page "
                           "without JavaScript is read in it unless the visitor chooses another")
    # -- e-mail (without SMTP_HOST, mail goes to the log)
    smtp_host: str | None = Field(None, description="the SMTP server")
    smtp_port: Annotated[int | None, BeforeValidator(_port)] = Field(
        None, description="default 587 (starttls), 465 (ssl) or 25 (none)")
    smtp_tls: Annotated[str, BeforeValidator(_one_of(TLS_MODES, "a TLS mode"))] = Field(
        "starttls", description="starttls, ssl or none")
    smtp_user: str | None = Field(None, description="SMTP user name (with SMTP_PASSWORD)")
    smtp_password: SecretStr | None = Field(None, description="SMTP password (with SMTP_USER)")
    smtp_from: str = Field("search-party@localhost", description="the sender address")
    # -- tests only
    test_pause_before_commit: Path | None = Field(
        None, description="crash tests: the worker pauses inside a clip's final transaction")

    @model_validator(mode="after")
    def _smtp_login_is_complete(self) -> Settings:
        if (self.smtp_user is None) != (self.smtp_password is None):
            raise ValueError("set both SEARCH_PARTY_SMTP_USER and SEARCH_PARTY_SMTP_PASSWORD, or neither")
        return self

    @model_validator(mode="after")
    def _a_proxied_server_knows_its_address(self) -> Settings:
        if self.trusted_proxies and self.public_url is None:
            raise ValueError("SEARCH_PARTY_TRUSTED_PROXIES needs SEARCH_PARTY_PUBLIC_URL: the address people "
                             "use (e.g. https://search-party.example.org), for links in e-mails")
        return self

    # -- derived places

    @property
    def cache_dir(self) -> Path:
        """Build outputs such as exported ONNX graphs (never committed)."""
        return self.model_cache or self.data_dir / "models"

    @property
    def db_path(self) -> Path:
        """The SQLite database: the source of truth for cameras, clips, sightings and vectors."""
        return self.db or self.data_dir / "search_party.db"

    @property
    def index_path(self) -> Path:
        """The FAISS index: a cache of the sighting vectors, rebuilt from SQLite when needed."""
        return self.index or self.data_dir / "index" / "sightings.faiss"

    @property
    def queue_path(self) -> Path:
        """The huey SQLite queue, used when no Redis URL is set."""
        return self.data_dir / "queue.db"

    @property
    def spool_dir(self) -> Path:
        """Volunteered clips waiting for the worker; each is deleted once processed."""
        return self.data_dir / "spool"

    @property
    def cookies_secure(self) -> bool:
        """Cookies only over HTTPS (and HSTS): asked for, or implied by an https:// public address."""
        return self.secure_cookies or (self.public_url or "").startswith("https://")

    @property
    def behind_proxy(self) -> bool:
        return self.trusted_proxies > 0

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def camera_daily_upload_bytes(self) -> int:
        return int(self.camera_daily_upload_mb * 1024 * 1024)

    @property
    def effective_smtp_port(self) -> int:
        return self.smtp_port or SMTP_DEFAULT_PORTS[self.smtp_tls]

    def moved_to(self, data_dir: Path) -> Settings:
        """These settings for a throw-away instance in ``data_dir`` (its own database, index, spool
        and queue) that shares this one's models and exported graphs."""
        return self.model_copy(update={"data_dir": data_dir, "db": None, "index": None,
                                       "model_cache": self.cache_dir})

    def vision_runtime(self) -> Runtime:
        """Where the vision package finds model files and keeps exported graphs, and how it runs."""
        dirs = (self.model_dir, DEFAULT_MODEL_DIR) if self.model_dir else (DEFAULT_MODEL_DIR,)
        # Fetched files go to the configured model folder, else beside the exported graphs (a
        # data folder the server may write, unlike ../shared or an installed tree).
        return Runtime(model_dirs=dirs, cache_dir=self.cache_dir, threads=self.threads,
                       providers=self.onnx_providers, allow_download=not self.offline,
                       download_dir=self.model_dir or self.cache_dir, mirror=self.model_mirror)

    def prepare_dirs(self) -> None:
        """Create the data folders, or say clearly why they cannot be used."""
        for folder in (self.data_dir, self.spool_dir, self.db_path.parent, self.index_path.parent):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UserError(f"cannot create {folder}: {exc.strerror}; set SEARCH_PARTY_DATA_DIR "
                                "to a writable folder") from None
            if not os.access(folder, os.W_OK):
                raise UserError(f"{folder} is not writable; set SEARCH_PARTY_DATA_DIR to a writable folder")

    def as_environment(self) -> dict[str, str]:
        """The ``SEARCH_PARTY_*`` variables that give a child process these very settings."""
        env = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, bool):
                value = "1" if value else "0"
            elif isinstance(value, tuple):
                value = ",".join(value)
            env[ENV_PREFIX + name.upper()] = str(value)
        return env

    def described(self) -> Iterator[tuple[str, str, str]]:
        """``(variable, effective value, what it is)`` for every setting, secrets masked."""
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                shown = "********"
            elif isinstance(value, tuple):
                shown = ",".join(value) or "(choose)"
            else:
                shown = "(unset)" if value is None else str(value)
            yield ENV_PREFIX + name.upper(), shown, field.description or ""


class AgentSettings(BaseSettings):
    """The camera-side agent's settings (its command-line options win over these)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True,
                                      extra="ignore")

    server: str | None = Field(None, description="the Search Party server's address")
    agent_token: SecretStr | None = Field(None, description="the camera's upload token")


def _explain(exc: ValidationError) -> str:
    """One line per bad variable: ``SEARCH_PARTY_X='value' must be ...`` (secrets not echoed)."""
    lines = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:
            lines.append(message)
            continue
        variable = ENV_PREFIX + str(error["loc"][0]).upper()
        value = error.get("input")
        secret = "secret" in variable.lower() or "password" in variable.lower()
        if secret or value is None or not isinstance(value, (str, int, float)):
            lines.append(f"{variable} {message}")
        else:
            lines.append(f"{variable}={value!r} {message}")
    return "; ".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """The settings from the environment, with ``overrides`` (field names) on top; a bad value is
    one UserError naming its variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise UserError(_explain(exc)) from None
    except SettingsError as exc:  # a value the environment source itself could not read
        raise UserError(str(exc)) from None


def load_agent_settings() -> AgentSettings:
    try:
        return AgentSettings()
    except ValidationError as exc:
        raise UserError(_explain(exc)) from None

