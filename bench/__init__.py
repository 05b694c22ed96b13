"""Benchmarks of the operator (fleet, steady state, change latency) and of the runtime; see README.md."""
