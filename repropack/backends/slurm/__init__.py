"""The SLURM backend: job arrays with packing, job-side results records, squeue-first status.

``backend.py`` submits and polls; ``batch.py`` groups, packs and renders the sbatch scripts from
``templates/slurm.sbatch``; ``status.py`` turns records and final states into statuses;
``checks.py`` refuses what the partition cannot run before anything is submitted; ``cli.py`` calls
and parses SLURM's commands. See docs/slurm.md.
"""
