"""`thumbservice` and `python -m thumbservice`: serve, configured only from the environment."""

from __future__ import annotations

import sys

from aiohttp import web

from thumbservice.adapters.observability.logs import configure_logging
from thumbservice.entrypoints.config import ConfigError, Settings


def main() -> None:
    try:
        settings = Settings.from_env()
    except ConfigError as err:
        print(f"thumbservice: configuration error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_level, settings.log_format)

    from thumbservice.entrypoints.app import create_app

    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        shutdown_timeout=settings.shutdown_timeout,
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()
