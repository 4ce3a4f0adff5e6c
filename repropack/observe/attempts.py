"""The cause of a failed attempt, read from the run's records through the one reader (formats 1 and 2)."""

from __future__ import annotations

from typing import Any

from repropack.observe.causes import TAIL_BYTES, TAIL_LINES, Cause, CauseTable, builtin


def attempt_log_of(view: Any, attempt: Any) -> str:
    """The tail of an attempt's stderr then stdout (a RunView and one of its AttemptRecords)."""
    parts = []
    for name in ("stderr", "stdout"):
        text = view.stream(attempt, name, max_bytes=TAIL_BYTES).decode("utf-8", "replace")
        parts.append("\n".join(text.splitlines()[-TAIL_LINES:]))
    return "\n".join(p for p in parts if p)


def diagnose_attempt(view: Any, instance_id: str, failure: str | None,
                     table: CauseTable | None = None) -> Cause | None:
    """The cause of the instance's last attempt in ``view`` (None when it was cancelled or has none)."""
    if failure == "cancelled":
        return None  # the user stopped it: no cause to find
    last = view.last_attempt(instance_id) if view is not None else None
    return (table or builtin()).match(failure=failure, exit_status=last.exit_status if last else None,
                                      signal=last.signal if last else None,
                                      log=attempt_log_of(view, last) if last else "")


def causes_of_run(root: Any, run_id: str, failed: list[tuple[str, str | None, Any]],
                  table: CauseTable | None = None) -> dict[str, Cause]:
    """Instance id -> cause, for (id, failure class, run directory) of a run's failed instances, through
    the one reader; an instance it cannot answer for is read from its run directory (format 1)."""
    from repropack.observe.causes import diagnose_dir

    view = None
    try:
        from repropack.run.records.reader import open_run

        view = open_run(root, run_id, only={iid for iid, _, _ in failed})
    except (OSError, ValueError):
        pass
    out: dict[str, Cause] = {}
    for iid, failure, where in failed:
        cause = None
        if view is not None and view.last_attempt(iid) is not None:
            cause = diagnose_attempt(view, iid, failure, table)
        elif where is not None:
            cause = diagnose_dir(where, failure, table)
        if cause is not None:
            out[iid] = cause
    return out
