"""The signing-policy step on the host: ask the policy service, relay its approval."""
