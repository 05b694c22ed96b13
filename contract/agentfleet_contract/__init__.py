"""What the operator and the agent runtime agree on, in a package neither side owns.

The operator writes the runtime's config file and both programs write the same JSON log lines;
putting those formats here lets each side import them without pulling in the other's
dependencies (the operator never loads the runtime's web stack, the runtime never loads kopf).
So this package uses pydantic and the standard library only; `.importlinter` enforces it.
"""
