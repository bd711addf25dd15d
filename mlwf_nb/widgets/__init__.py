"""widgets layer (see docs/architecture.md)."""
