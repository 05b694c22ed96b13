"""Session memory: redaction and encryption at the boundary, then Redis or in-process storage."""
