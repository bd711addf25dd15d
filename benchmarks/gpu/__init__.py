"""GPU benchmarks, run by hand on a machine with an NVIDIA GPU (see README.md here)."""
