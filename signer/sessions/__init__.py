"""Sessions on the host: the registry, finished-session retention, per-caller quotas."""
