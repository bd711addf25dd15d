"""steps layer (see docs/architecture.md)."""
