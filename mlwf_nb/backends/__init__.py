"""backends layer (see docs/architecture.md)."""
