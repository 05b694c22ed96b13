"""The API's identity and the strings it puts on other objects, in one place: the group and version,
the plurals, the labels and annotations, and the field manager. Every layer above reads them from
here (the kube layer too, so it needs nothing of the builders)."""

from __future__ import annotations

GROUP = "agentfleet.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

PLURAL_AGENTS = "agents"
PLURAL_CONNECTORS = "connectors"
PLURAL_STATE_POLICIES = "statepolicies"

# Server-side apply field manager, managed-by label value and the Events' source component.
MANAGER = "agentfleet"
# The second manager that holds a Deployment's spec.replicas while an HPA takes over (builders/replicas.py).
HANDOVER_MANAGER = f"{MANAGER}-replicas-handover"

# Everything the operator writes or reads under its own prefix (annotations of intent, kopf's storage).
PREFIX = f"{GROUP}/"
LABEL_AGENT = f"{PREFIX}agent"
LABEL_REVISION = f"{PREFIX}revision"
LABEL_TRACK = f"{PREFIX}track"
LABEL_STATE_POLICY = f"{PREFIX}statepolicy"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"

# What a user (or `kubectl agentfleet`) annotates an Agent with to steer its canary.
INTENT_PROMOTE = "promote"
INTENT_ABORT = "abort"
INTENT_RETRY = "retry"
INTENT_KINDS = (INTENT_PROMOTE, INTENT_ABORT, INTENT_RETRY)
INTENT_ANNOTATIONS = {kind: PREFIX + kind for kind in INTENT_KINDS}
ANNOTATION_PROMOTE = INTENT_ANNOTATIONS[INTENT_PROMOTE]
ANNOTATION_ABORT = INTENT_ANNOTATIONS[INTENT_ABORT]
ANNOTATION_RETRY = INTENT_ANNOTATIONS[INTENT_RETRY]
# On the pod template: what the revision hash covers besides the config (builders/agent_children.py).
ANNOTATION_IMAGE = f"{PREFIX}image"
ANNOTATION_MOUNTS = f"{PREFIX}secret-mounts"
# "true" when the revision's pods serve HTTPS (its probes use scheme HTTPS).
ANNOTATION_TLS = f"{PREFIX}tls"

FINALIZER = f"{PREFIX}finalizer"
EVENT_REPORTING_COMPONENT = f"{PREFIX}operator"
