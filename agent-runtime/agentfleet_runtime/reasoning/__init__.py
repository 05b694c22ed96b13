"""Reasoning: an OpenAI-compatible model with tool calling, or the deterministic rules reasoner."""
