"""`agentfleet-operator`: run the operator."""

from __future__ import annotations

import argparse
import logging
import sys

import kopf
from agentfleet_contract.json_logs import JsonLogFormatter
from prometheus_client import start_http_server

from .config import OperatorConfig


class JsonFormatter(JsonLogFormatter):
    """The JSON log format shared with the runtime (agentfleet_contract.json_logs)."""

    def __init__(self) -> None:
        # kopf attaches its settings object and the object reference to every record of a
        # handler's logger; they are not log fields (kopf's own JSON formatter skips them too).
        super().__init__(skip=("settings", "k8s_skip", "k8s_ref"))


def _configure_logging(fmt: str, verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # kopf logs every watch event at DEBUG; keep INFO unless asked.
    logging.getLogger("kopf").setLevel(logging.DEBUG if verbose else logging.WARNING)
    # One line per HTTP request (the analysis's Prometheus queries, the MCP discovery's calls) is noise.
    for library in ("httpx", "httpx2", "mcp"):
        logging.getLogger(library).setLevel(logging.WARNING)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="agentfleet-operator", description="Run the agentfleet operator.")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace (default)")
    scope.add_argument("--namespace", "-n", action="append", default=[], help="watch only this namespace (repeat)")
    parser.add_argument("--metrics-port", type=int, default=9090, help="Prometheus metrics port (0 = off)")
    parser.add_argument("--health-port", type=int, default=8081, help="/healthz and /readyz port (0 = off)")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("--verbose", "-v", action="store_true")
    parser.add_argument(
        "--leader-elect",
        action="store_true",
        help="run several replicas for HA: only the holder of the Lease reconciles",
    )
    parser.add_argument("--lease-seconds", type=int, default=15, help="how long a silent leader keeps the Lease")
    parser.add_argument("--runtime-image", default=None, help="default agent runtime image")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _configure_logging(args.log_format, args.verbose)
    config = OperatorConfig.parse(
        health_port=args.health_port,
        leader_elect=args.leader_elect,
        lease_seconds=args.lease_seconds,
        runtime_image=args.runtime_image,
    )
    if args.metrics_port:
        start_http_server(args.metrics_port)
    from .handlers import indexes, lifecycle, triggers, watch_transform  # noqa: F401  (registers the handlers)
    from .handlers.memo import OperatorMemo

    watch_transform.install()

    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        # HA is our own Lease election (warm standbys); kopf's peering would pause the watches too.
        standalone=True,
        # kopf's default identity calls getpass.getuser(), which raises for a uid with no passwd
        # entry: the image's numeric non-root user 65532 has none (found running the image for real).
        identity=config.identity,
        memo=OperatorMemo.wired(config),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
