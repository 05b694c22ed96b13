"""agentfleet agent runtime: perception -> reasoning -> action -> memory behind an OpenAI-compatible API."""

__version__ = "0.1.0"
