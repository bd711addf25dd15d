"""hpo layer (see docs/architecture.md)."""
