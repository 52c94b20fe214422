"""Settings from the environment. A bad value stops start-up with a message naming the variable."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from thumbservice.domain.frames import (
    DEFAULT_COLOR_CONFIGURATION_TYPES,
    DEFAULT_CONFIGURATION_TYPES,
    DEFAULT_REQUIRED_KEYS,
    parse_color_filters,
)

PLACEHOLDER_BUCKET = "changeme"
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # the longest a SigV4 presigned URL may live


class ConfigError(ValueError):
    """A variable of the environment has a value the service cannot use."""


@dataclass(frozen=True)
class Settings:
    archive_api_url: str = "http://localhost/"
    archive_source: str = "http"
    sample_archive_dir: Path = Path("var/sample-archive")
    tmp_dir: Path = Path("/tmp/")
    aws_bucket: str = PLACEHOLDER_BUCKET
    aws_access_key_id: str = "changeme"
    aws_secret_access_key: str = "changeme"
    aws_default_region: str = "us-east-1"
    storage_url: str | None = None
    thumbnail_store: str = "auto"
    local_store_dir: Path = Path("var/thumbnails")
    local_store_secret: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)
    public_url: str | None = None
    required_frame_validation_keys: tuple[str, ...] = DEFAULT_REQUIRED_KEYS
    valid_configuration_types: tuple[str, ...] = DEFAULT_CONFIGURATION_TYPES
    valid_configuration_types_for_color_thumbs: tuple[str, ...] = DEFAULT_COLOR_CONFIGURATION_TYPES
    color_filters: str = "red=R,rp;visual=V;blue=B"
    color_alignment: bool = True
    host: str = "0.0.0.0"
    port: int = 8080
    archive_timeout: float = 10.0
    archive_list_timeout: float = 30.0
    download_timeout: float = 60.0
    request_deadline: float = 120.0
    render_timeout: float = 300.0
    max_thumbnail_size: int = 5000
    max_download_bytes: int = 512 * 1024 * 1024
    max_image_pixels: int = 64 * 1024 * 1024
    render_workers: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    render_queue_depth: int = 8
    retry_after: int = 5
    url_expiry: int = MAX_PRESIGN_SECONDS
    readiness_cache_seconds: float = 5.0
    shutdown_timeout: float = 30.0
    log_level: str = "INFO"
    log_format: str = "json"

    @property
    def store_kind(self) -> str:
        """`s3` whenever a real bucket is named (not the seed's placeholder), else `local`."""
        if self.thumbnail_store != "auto":
            return self.thumbnail_store
        return "s3" if self.aws_bucket and self.aws_bucket != PLACEHOLDER_BUCKET else "local"

    @property
    def base_url(self) -> str:
        """Where this service is reached from outside, for the URLs of the local store."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "localhost" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = _Env(os.environ if env is None else env)
        defaults = cls()
        settings = cls(
            archive_api_url=e.url("ARCHIVE_API_URL", defaults.archive_api_url, slash=True),
            archive_source=e.choice("ARCHIVE_SOURCE", defaults.archive_source, ("http", "samples")),
            sample_archive_dir=e.path("SAMPLE_ARCHIVE_DIR", defaults.sample_archive_dir),
            tmp_dir=e.path("TMP_DIR", defaults.tmp_dir),
            aws_bucket=e.text("AWS_BUCKET", defaults.aws_bucket),
            aws_access_key_id=e.text("AWS_ACCESS_KEY_ID", defaults.aws_access_key_id),
            aws_secret_access_key=e.text("AWS_SECRET_ACCESS_KEY", defaults.aws_secret_access_key),
            aws_default_region=e.text("AWS_DEFAULT_REGION", defaults.aws_default_region),
            storage_url=e.optional_url("STORAGE_URL"),
            thumbnail_store=e.choice("THUMBNAIL_STORE", "auto", ("auto", "s3", "local")),
            local_store_dir=e.path("LOCAL_STORE_DIR", defaults.local_store_dir),
            local_store_secret=e.text("LOCAL_STORE_SECRET", defaults.local_store_secret),
            public_url=e.optional_url("PUBLIC_URL"),
            required_frame_validation_keys=e.names(
                "REQUIRED_FRAME_VALIDATION_KEYS", DEFAULT_REQUIRED_KEYS, allow_empty=True
            ),
            valid_configuration_types=e.names(
                "VALID_CONFIGURATION_TYPES", DEFAULT_CONFIGURATION_TYPES
            ),
            valid_configuration_types_for_color_thumbs=e.names(
                "VALID_CONFIGURATION_TYPES_FOR_COLOR_THUMBS", DEFAULT_COLOR_CONFIGURATION_TYPES
            ),
            color_filters=e.color_filters("COLOR_FILTERS", defaults.color_filters),
            color_alignment=e.boolean("COLOR_ALIGNMENT", True),
            host=e.text("HOST", defaults.host),
            port=e.integer("PORT", defaults.port, 0, 65535),
            archive_timeout=e.number("ARCHIVE_TIMEOUT", defaults.archive_timeout),
            archive_list_timeout=e.number("ARCHIVE_LIST_TIMEOUT", defaults.archive_list_timeout),
            download_timeout=e.number("DOWNLOAD_TIMEOUT", defaults.download_timeout),
            request_deadline=e.number("REQUEST_DEADLINE", defaults.request_deadline),
            render_timeout=e.number("RENDER_TIMEOUT", defaults.render_timeout),
            max_thumbnail_size=e.integer("MAX_THUMBNAIL_SIZE", defaults.max_thumbnail_size, 1),
            max_download_bytes=e.integer("MAX_DOWNLOAD_BYTES", defaults.max_download_bytes, 1),
            max_image_pixels=e.integer("MAX_IMAGE_PIXELS", defaults.max_image_pixels, 1),
            render_workers=e.integer("RENDER_WORKERS", defaults.render_workers, 1, 256),
            render_queue_depth=e.integer("RENDER_QUEUE_DEPTH", defaults.render_queue_depth, 0),
            retry_after=e.integer("RETRY_AFTER", defaults.retry_after, 1),
            url_expiry=e.integer("URL_EXPIRY", defaults.url_expiry, 1, MAX_PRESIGN_SECONDS),
            readiness_cache_seconds=e.number(
                "READINESS_CACHE_SECONDS", defaults.readiness_cache_seconds, allow_zero=True
            ),
            shutdown_timeout=e.number("SHUTDOWN_TIMEOUT", defaults.shutdown_timeout),
            log_level=e.choice(
                "LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"), upper=True
            ),
            log_format=e.choice("LOG_FORMAT", "json", ("json", "console")),
        )
        if settings.store_kind == "s3" and settings.aws_bucket in ("", PLACEHOLDER_BUCKET):
            raise ConfigError("AWS_BUCKET must name a real bucket when THUMBNAIL_STORE=s3")
        return settings


class _Env:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None:
            return None
        value = value.strip()
        # The seed README quotes some defaults ('/tmp/'); accept values written that way.
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1].strip()
        return value if value != "" else None

    def text(self, name: str, default: str) -> str:
        value = self.raw(name)
        return default if value is None else value

    def path(self, name: str, default: Path) -> Path:
        value = self.raw(name)
        return default if value is None else Path(value)

    def url(self, name: str, default: str, *, slash: bool = False) -> str:
        value = self.text(name, default)
        if not value.startswith(("http://", "https://")):
            raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
        if slash and not value.endswith("/"):
            value += "/"
        return value

    def optional_url(self, name: str) -> str | None:
        value = self.raw(name)
        if value is None or value.lower() == "none":
            return None
        return self.url(name, value)

    def choice(
        self, name: str, default: str, options: tuple[str, ...], *, upper: bool = False
    ) -> str:
        value = self.text(name, default)
        value = value.upper() if upper else value.lower()
        if value not in options:
            raise ConfigError(f"{name} must be one of {', '.join(options)}, got {value!r}")
        return value

    def integer(self, name: str, default: int, low: int = 0, high: int | None = None) -> int:
        value = self.raw(name)
        if value is None:
            return default
        if not value.isdigit():
            raise ConfigError(f"{name} must be a whole number, got {value!r}")
        number = int(value)
        if number < low or (high is not None and number > high):
            upper = "" if high is None else f" and at most {high}"
            raise ConfigError(f"{name} must be at least {low}{upper}, got {number}")
        return number

    def number(self, name: str, default: float, *, allow_zero: bool = False) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{name} must be a number of seconds, got {value!r}") from None
        if not (number > 0 or (allow_zero and number == 0)) or number != number:
            raise ConfigError(f"{name} must be a positive number, got {value!r}")
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {value!r}")

    def names(
        self, name: str, default: tuple[str, ...], *, allow_empty: bool = False
    ) -> tuple[str, ...]:
        value = self.raw(name)
        if value is None:
            return default
        names = tuple(part.strip() for part in value.split(",") if part.strip())
        if not names and not allow_empty:
            raise ConfigError(f"{name} must list at least one name")
        return names

    def color_filters(self, name: str, default: str) -> str:
        value = self.text(name, default)
        try:
            parse_color_filters(value)
        except ValueError as err:
            raise ConfigError(f"{name}: {err}") from None
        return value
