"""agentfleet: a Kubernetes operator that runs enterprise AI agents."""

__version__ = "0.1.0"
