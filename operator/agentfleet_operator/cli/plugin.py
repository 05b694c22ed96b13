"""`kubectl agentfleet`: status, history and rollout intents (promote, abort, retry) of Agents.

kubectl runs any `kubectl-agentfleet` on PATH as `kubectl agentfleet …`, passing the arguments after the
plugin name but none of its own flags, so the plugin reads the kubeconfig itself exactly like kubectl:
--kubeconfig, else $KUBECONFIG (a list of files), else ~/.kube/config, else in-cluster credentials.

Exit codes: 0 done, 1 the API said no (not found, forbidden, unreachable, bad kubeconfig), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentfleet_operator.api.base import GROUP, VERSION
from agentfleet_operator.api.kinds import AGENT
from agentfleet_operator.builders.names import LABEL_AGENT
from agentfleet_operator.rollout.state_machine import ABORT, INTENT_ANNOTATIONS, PROMOTE, RETRY

from .render import ACTIVE_PHASES, render_history, render_status

PROG = "kubectl agentfleet"
# One request should never hang a terminal; kubectl has no default, but nothing here is long-running.
REQUEST_TIMEOUT_SECONDS = 30
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class PluginError(Exception):
    """Something the user should read on stderr; exit code 1."""


# ------------------------------------------------------------------------------------------- intents


def nonce(now: datetime | None = None) -> str:
    """A value never used before, so the operator (which acts once per distinct value) acts again.
    The timestamp tells people reading the annotation when it was set; the random tail keeps two
    promotes within the same second distinct."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def intent_value(kind: str, full: bool = False, now: datetime | None = None) -> str:
    """The annotation value for an intent: promote is `step:<nonce>` or `full:<nonce>` (the operator reads
    the part before the colon), abort and retry are just a nonce."""
    if kind == PROMOTE:
        return f"{'full' if full else 'step'}:{nonce(now)}"
    if kind in (ABORT, RETRY):
        return nonce(now)
    raise ValueError(f"unknown intent {kind!r}")


def intent_patch(kind: str, value: str) -> dict[str, Any]:
    """A JSON merge patch touching only metadata.annotations: no spec change means no new generation and
    nothing for Argo CD (or any GitOps tool owning the spec) to revert."""
    return {"metadata": {"annotations": {INTENT_ANNOTATIONS[kind]: value}}}


def intent_outcome(agent: dict[str, Any], kind: str, full: bool = False) -> tuple[str, str | None]:
    """(what the operator will do, a warning when the Agent's current state makes the intent a no-op)."""
    status = agent.get("status") or {}
    rollout = status.get("rollout") or {}
    phase = str(rollout.get("phase") or "Idle")
    canary = str((status.get("revision") or {}).get("canary") or "")
    stable = str((status.get("revision") or {}).get("stable") or "")
    strategy = ((agent.get("spec") or {}).get("rollout") or {}).get("strategy") or "RollingUpdate"
    active = phase in ACTIVE_PHASES and bool(canary)
    warning = None
    if kind == PROMOTE:
        if full:
            what = f"promote canary {canary or '?'} to stable now, skipping the remaining steps"
        else:
            steps = (((agent.get("spec") or {}).get("rollout") or {}).get("canary") or {}).get("steps") or []
            step = rollout.get("step", 0)
            where = f"step {step + 1}/{len(steps)}" if isinstance(step, int) and steps else "the current step"
            what = f"end {where} of canary {canary or '?'} and go on with the next"
        if not active:
            warning = f"no canary is in progress (strategy {strategy}, rollout phase {phase}): it will be ignored"
    elif kind == ABORT:
        what = f"roll back canary {canary or '?'}; stable {stable or '?'} keeps serving"
        if not active:
            warning = f"no canary is in progress (rollout phase {phase}): it will be ignored"
    else:
        aborted = str(rollout.get("abortedRevision") or "")
        what = (
            f"start the canary of revision {aborted} again from step 1"
            if aborted
            else "start an aborted canary again from step 1"
        )
        if phase != "Aborted":
            warning = f"retry applies only to an aborted rollout (rollout phase {phase}): it will be ignored"
    if not status:
        warning = "the Agent has no status yet (is the operator running?)"
    return what, warning


# ------------------------------------------------------------------------------------------- arguments


def _add_connection_flags(parser: argparse.ArgumentParser, suppress: bool) -> None:
    # The same flags on the top parser and on each command, so `kubectl agentfleet -n x status a` and
    # `kubectl agentfleet status a -n x` both work; on commands the default is SUPPRESS so an absent flag
    # does not overwrite one given before the command.
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--kubeconfig", default=default, help="path of the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)"
    )
    parser.add_argument("--context", default=default, help="kubeconfig context to use (default: the current one)")
    parser.add_argument(
        "-n",
        "--namespace",
        default=default,
        help="namespace of the Agent (default: the context's namespace, else default)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Watch and steer agentfleet Agents and their canary rollouts.",
        epilog="Intents are annotations the operator acts on once per distinct value; they never edit the spec, "
        "so GitOps tools do not revert them. Exit codes: 0 ok, 1 API error or not found, 2 usage.",
    )
    _add_connection_flags(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=description)
        sub.add_argument("agent", help="name of the Agent")
        _add_connection_flags(sub, suppress=True)
        return sub

    command(
        "status",
        "show phase, readiness, revisions, canary steps and analysis",
        "Show an Agent's phase, Ready condition, replicas, stable and canary revisions, the canary steps "
        "with the current one marked (>), target and actual weight, and the analysis measurements.",
    )
    promote = command(
        "promote",
        "end the current canary step (or, with --full, promote the canary now)",
        "Set agentfleet.dev/promote=step:<nonce> (or full:<nonce>). step ends the current canary "
        "step, including a pause without duration or an inconclusive analysis; full promotes the "
        "canary to stable at once, skipping every remaining step and analysis.",
    )
    promote.add_argument("--full", action="store_true", help="promote the canary to stable now, skipping the rest")
    command(
        "abort",
        "roll the canary back; the stable revision keeps serving",
        "Set agentfleet.dev/abort=<nonce>: the canary is removed at once and the rollout is Aborted until "
        "the spec changes or `retry` is given.",
    )
    command(
        "retry",
        "run an aborted canary again from step 1",
        "Set agentfleet.dev/retry=<nonce>: an Aborted rollout starts the canary of the same revision again.",
    )
    command(
        "history",
        "list kept revisions and their revision ConfigMaps",
        "List the revisions in status.revisionHistory (newest first), which is stable or canary, and whether "
        "the ConfigMap <agent>-config-<revision> still exists, with its creation time and image.",
    )
    return parser


# ------------------------------------------------------------------------------------------- API access


class Cluster:
    """The few API calls the plugin makes, with errors turned into PluginError messages."""

    def __init__(self, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
        # Imported here so `--help` and usage errors stay fast and work without a kubeconfig.
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        self._client = client
        try:
            default_namespace = self._load(config, kubeconfig, context)
        except (ConfigException, OSError, ValueError, TypeError) as exc:
            raise PluginError(f"cannot load the kubeconfig: {exc}") from exc
        self.namespace = namespace or default_namespace

    def _load(self, config: Any, kubeconfig: str | None, context: str | None) -> str:
        from kubernetes.config.config_exception import ConfigException

        if kubeconfig and not Path(kubeconfig).expanduser().is_file():
            # The client skips missing files silently and then blames the content; name the real problem.
            raise ConfigException(f"{kubeconfig} does not exist or is not a file")
        path = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        try:
            contexts, current = config.list_kube_config_contexts(config_file=path)
        except ConfigException:
            # No kubeconfig at all: inside a pod, use its ServiceAccount like kubectl does.
            if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
                config.load_incluster_config()
                self.api = self._client.ApiClient()
                try:
                    return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
                except OSError:
                    return "default"
            raise
        chosen = next((c for c in contexts if c.get("name") == context), None) if context else current
        if context and chosen is None:
            raise ConfigException(f"context {context!r} not found in {path}")
        self.api = config.new_client_from_config(config_file=path, context=context)
        return ((chosen or {}).get("context") or {}).get("namespace") or "default"

    def _call(self, what: Callable[[], Any], not_found: str) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return what()
        except ApiException as exc:
            raise PluginError(_api_error(exc, not_found)) from exc
        except HTTPError as exc:
            host = self.api.configuration.host
            raise PluginError(f"cannot reach the API server at {host}: {exc}") from exc

    def get_agent(self, name: str) -> dict[str, Any]:
        custom = self._client.CustomObjectsApi(self.api)
        return self._call(
            lambda: custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, AGENT.plural, name, _request_timeout=REQUEST_TIMEOUT_SECONDS
            ),
            f'Agent "{name}" not found in namespace "{self.namespace}"',
        )

    def patch_agent(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        custom = self._client.CustomObjectsApi(self.api)
        return self._call(
            lambda: custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                AGENT.plural,
                name,
                patch,
                _content_type="application/merge-patch+json",
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            ),
            f'Agent "{name}" not found in namespace "{self.namespace}"',
        )

    def revision_config_maps(self, agent: str) -> list[dict[str, Any]]:
        core = self._client.CoreV1Api(self.api)
        # The raw JSON, not the client's models: render_history reads wire names, and the models would turn
        # creationTimestamp into a datetime printed differently from what kubectl shows.
        response = self._call(
            lambda: core.list_namespaced_config_map(
                self.namespace,
                label_selector=f"{LABEL_AGENT}={agent}",
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
                _preload_content=False,
            ),
            f'namespace "{self.namespace}" not found',
        )
        return list(json.loads(response.data).get("items") or [])


def _api_error(exc: Any, not_found: str) -> str:
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    message = body.get("message") or exc.reason or "unknown error"
    if exc.status == 404:
        # A 404 naming no object means the resource type itself is missing: the CRDs are not installed.
        if not (body.get("details") or {}).get("name"):
            return f"the cluster does not serve {AGENT.plural}.{GROUP}/{VERSION}: are the agentfleet CRDs installed?"
        return not_found
    if exc.status in (401, 403):
        return f"not allowed: {message}"
    return f"API error {exc.status}: {message}"


# ------------------------------------------------------------------------------------------- commands


def _status(cluster: Cluster, args: argparse.Namespace) -> None:
    print(render_status(cluster.get_agent(args.agent), now=datetime.now(UTC)), end="")


def _history(cluster: Cluster, args: argparse.Namespace) -> None:
    agent = cluster.get_agent(args.agent)
    print(render_history(agent, cluster.revision_config_maps(args.agent), now=datetime.now(UTC)), end="")


def _intent(kind: str) -> Callable[[Cluster, argparse.Namespace], None]:
    def run(cluster: Cluster, args: argparse.Namespace) -> None:
        full = bool(getattr(args, "full", False))
        # Read first: a clear not-found before any write, and a warning when the intent would be a no-op.
        agent = cluster.get_agent(args.agent)
        what, warning = intent_outcome(agent, kind, full)
        value = intent_value(kind, full)
        cluster.patch_agent(args.agent, intent_patch(kind, value))
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
        print(f"agent.{GROUP}/{args.agent} annotated: {INTENT_ANNOTATIONS[kind]}={value}")
        print(f"The operator acts on this value once: it will {what}.")
        print(f"Follow it with: {PROG} status {args.agent} -n {cluster.namespace}")

    return run


COMMANDS: dict[str, Callable[[Cluster, argparse.Namespace], None]] = {
    "status": _status,
    "history": _history,
    "promote": _intent(PROMOTE),
    "abort": _intent(ABORT),
    "retry": _intent(RETRY),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on usage errors, 0 on --help
    if args.command is None:
        parser.print_usage(sys.stderr)
        print(f"{PROG}: error: a command is required ({', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    try:
        cluster = Cluster(args.kubeconfig, args.context, args.namespace)
        COMMANDS[args.command](cluster, args)
    except PluginError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `kubectl agentfleet status x | head`
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
