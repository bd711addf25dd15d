"""ml layer (see docs/architecture.md)."""
