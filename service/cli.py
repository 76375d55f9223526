"""``xalign-serve``: run the service; every ``XALIGN_`` setting is also a flag (``--store``, ``--port`` …)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import uvicorn

from service.app import create_app
from service.log_config import configure_logging
from service.settings import Settings


class ServeSettings(Settings, cli_prog_name="xalign-serve", cli_kebab_case=True, cli_implicit_flags=True):
    """Settings read from flags, then ``XALIGN_`` environment variables, then defaults."""


def parse_settings(argv: Sequence[str]) -> Settings:
    """Settings from command-line flags over the environment."""
    return ServeSettings(_cli_parse_args=list(argv))


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``xalign-serve``."""
    settings = parse_settings(sys.argv[1:] if argv is None else argv)
    configure_logging(settings.log_level)
    # log_config=None keeps uvicorn from replacing the JSON handler; its access log would duplicate ours.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
