"""Backends: where step attempts run (local host/Docker/Apptainer now; SLURM and AWS Batch next).

The interface is :mod:`repropack.backends.base`; how each one expresses resources is
:mod:`repropack.backends.resources`.
"""
