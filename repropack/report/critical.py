"""The critical path: the chain of dependent instances with the largest total duration.

Each instance weighs what it took in this run (first attempt's start to last
attempt's end, retries and their backoff included); a cached instance weighs
nothing but still links what ran before it to what ran after it. Ties go to the
dependency that ended last, which is the one the run actually waited for.
Linear in instances plus dependency edges (Kahn's order, so any input order works).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from repropack.report.model import Instance


def critical_path(instances: Mapping[str, Instance]) -> tuple[list[str], float]:
    """(ids along the path in run order, its length in seconds); ids of instances that did not run are left out."""
    order = _topological(instances)
    best: dict[str, float] = {}
    via: dict[str, str | None] = {}
    for iid in order:
        inst = instances[iid]
        chosen, length, chosen_end = None, 0.0, float("-inf")
        for dep in inst.deps:
            if dep not in best:
                continue
            end = instances[dep].end or float("-inf")
            if best[dep] > length or (best[dep] == length and chosen is not None and end > chosen_end):
                chosen, length, chosen_end = dep, best[dep], end
        best[iid] = length + inst.span
        via[iid] = chosen
    if not best:
        return [], 0.0
    last = max(best, key=lambda i: (best[i], instances[i].end or float("-inf")))
    total = best[last]
    path: list[str] = []
    node: str | None = last
    while node is not None:
        if instances[node].attempts:
            path.append(node)
        node = via[node]
    path.reverse()
    return (path, total) if total > 0 else ([], 0.0)


def _topological(instances: Mapping[str, Instance]) -> list[str]:
    waiting = {iid: sum(1 for d in inst.deps if d in instances) for iid, inst in instances.items()}
    children: dict[str, list[str]] = {}
    for iid, inst in instances.items():
        for dep in inst.deps:
            if dep in instances:
                children.setdefault(dep, []).append(iid)
    queue = deque(iid for iid, n in waiting.items() if n == 0)
    order = []
    while queue:
        iid = queue.popleft()
        order.append(iid)
        for child in children.get(iid, ()):
            waiting[child] -= 1
            if waiting[child] == 0:
                queue.append(child)
    return order  # a cycle (impossible from a valid DAG) leaves its members out rather than looping
