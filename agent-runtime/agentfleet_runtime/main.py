"""`agentfleet-runtime --config <file>`: load the configuration and serve the API with uvicorn."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys

from .config import ConfigError, load_config

EXIT_BAD_CONFIG = 2
GC_YOUNG_THRESHOLD = 5000  # allocations between young collections (CPython's default is 700)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="agentfleet-runtime", description="agentfleet agent runtime")
    parser.add_argument(
        "--config",
        default=os.environ.get("AGENTFLEET_CONFIG"),
        help="runtime configuration file, JSON or YAML (default: $AGENTFLEET_CONFIG)",
    )
    parser.add_argument("--host", help="override server.host")
    parser.add_argument("--port", type=int, help="override server.port")
    parser.add_argument("--log-level", default=os.environ.get("AGENTFLEET_LOG_LEVEL", "INFO"))
    parser.add_argument("--check", action="store_true", help="validate the configuration and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.config:
        print("agentfleet-runtime: --config is required (or set AGENTFLEET_CONFIG)", file=sys.stderr)
        return EXIT_BAD_CONFIG
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"agentfleet-runtime: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    if args.check:
        print("configuration ok")
        return 0

    # Imported only now so a bad config fails fast and `--check` needs no server libraries.
    import uvicorn

    from .app import create_app
    from .logging import configure_logging
    from .memory.redaction import Redactor

    configure_logging(
        args.log_level.upper(),
        redactor=Redactor(config.state.redaction if config.state else []),
        static={"agent": config.agent.name, "namespace": config.agent.namespace, "revision": config.agent.revision},
    )
    try:
        app = create_app(config)
    except (OSError, ValueError) as exc:
        # e.g. an unreadable encryption key file or an invalid tool schema
        logging.getLogger("agentfleet_runtime").error("cannot start", extra={"reason": str(exc)})
        print(f"agentfleet-runtime: cannot start: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    certificate = app.state.runtime.tls  # server.tls: the pair served, reloaded when its files change
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=args.host or config.server.host,
            port=args.port or config.server.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=config.server.graceful_shutdown_seconds,
            server_header=False,
            lifespan="on",
            # The one SSLContext listened with for the server's life; a rotation swaps the pair behind it.
            ssl_context_factory=(lambda _config, _default: certificate.context) if certificate is not None else None,
        )
    )
    settle_heap()
    server.run()
    return 0


def settle_heap() -> None:
    """Move everything built at start-up (FastAPI, pydantic, uvicorn: ~60k objects) out of the collector's
    reach. Otherwise every full collection walks them all again, a 20-40 ms pause that lands on whichever
    requests are in flight and makes the latency tail. A larger young generation also means fewer
    collections for the short-lived objects each request makes."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


if __name__ == "__main__":
    sys.exit(main())
