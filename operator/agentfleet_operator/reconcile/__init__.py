"""Reconcilers: read from the in-memory indexes, build what is desired, apply only what changed,
write status. One per kind; they are driven by a work queue, not by kopf's change handlers."""
