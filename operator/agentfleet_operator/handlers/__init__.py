"""kopf registrations only: indexes that mirror the cluster, and events that enqueue reconciles."""
