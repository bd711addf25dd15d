"""Workflow steps: each a declared function that reads input files and writes output files.

``mlwf step NAME ...`` runs one; the workflow builder turns them into Pegasus jobs.
"""

from mlwf_nb.steps.registry import StepDef, available_steps, get_step, run_step, step

__all__ = ["StepDef", "step", "get_step", "available_steps", "run_step"]
