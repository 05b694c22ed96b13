"""The runtime's HTTP layer (shared/API.md, "Runtime HTTP API"), one room each: the routes by
concern (chat, sessions, probes and metrics), the middleware every request passes, the error
responses and the OpenAI wire shapes. `agentfleet_runtime.app` puts them together."""
