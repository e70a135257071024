"""Feature flags: Unleash-backed, evaluated in-process (issue: feature flags)."""
