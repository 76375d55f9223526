"""``xalign-serve``: run the service; every ``XALIGN_`` setting is also a flag (``--store``, ``--port`` …)."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence

import uvicorn

from xalign.service.connection_timeouts import ConnectionTimeouts, protocol_with
from xalign.service.log_config import configure_logging
from xalign.service.settings import Settings


class ServeSettings(Settings, cli_prog_name="xalign-serve", cli_kebab_case=True, cli_implicit_flags=True):
    """Settings read from flags, then ``XALIGN_`` environment variables, then defaults."""


def parse_settings(argv: Sequence[str]) -> Settings:
    """Settings from command-line flags over the environment."""
    return ServeSettings(_cli_parse_args=list(argv))


def connection_timeouts(settings: Settings) -> ConnectionTimeouts:
    """The per-connection deadlines of ``settings``."""
    return ConnectionTimeouts(
        keep_alive_s=settings.keep_alive_timeout_s, header_s=settings.header_timeout_s, body_s=settings.body_timeout_s
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``xalign-serve``."""
    settings = parse_settings(sys.argv[1:] if argv is None else argv)
    configure_logging(settings.log_level)
    # onnxruntime (1.2x+) starts its telemetry when imported: a device id and an event database under
    # ~/.cache/Microsoft, and uploads when it can. A server writes only its own folders and phones nobody,
    # so it is off unless the operator set the variable; hence create_app is imported only now.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    from xalign.service.app import create_app  # noqa: PLC0415

    # log_config=None keeps uvicorn from replacing the JSON handler; its access log would duplicate ours.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        http=protocol_with(connection_timeouts(settings)),
        timeout_graceful_shutdown=math.ceil(settings.shutdown_timeout_s),
        log_level=settings.log_level,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
