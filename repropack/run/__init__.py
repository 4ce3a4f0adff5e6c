"""Running a workflow: the DAG of step instances (dag), the resource-aware scheduler, the durable
journal, cache keys and checksums, one run directory per instance (rundir), and the Runner that
drives a backend (repropack.backends) through them. docs/runner.md describes the design."""
