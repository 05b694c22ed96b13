"""Pure functions from (spec, resolved references) to desired Kubernetes manifests. No I/O here."""
