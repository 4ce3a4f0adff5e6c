"""Moved: the DAG and its expansion are load-time validation and live in :mod:`repropack.manifest.dag`.

Kept for callers written against the old home during this change; import from manifest.dag.
"""

from repropack.manifest.dag import CommandPlan, Dag, Instance, expand

__all__ = ["CommandPlan", "Dag", "Instance", "expand"]
