"""Action: the Connector tools an agent may call, with auth, limits and a circuit breaker."""
