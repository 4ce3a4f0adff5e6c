"""The local backend and what only it needs: the run's supervisor (``supervisor``), a cgroup per
step (``cgroups``), the containment that holds and measures a step's processes (``contain``,
``reaper``). Nothing under ``repropack/run/`` imports this package: the runner reaches it through
:mod:`repropack.backends.registry`.

Kept empty of imports so that ``python -m repropack.backends.local.supervisor`` starts fast.
"""
