"""Polling backends at their own cadence: block in a poll or sleep, never spin; a failing poll is
retried with back-off, then its jobs are lost with the error shown."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from repropack.backends.base import LOST, Backend, JobHandle, JobState, JobStatus
from repropack.errors import BackendError
from repropack.run.state import LoopState, start_clock

IDLE_WAIT, STOP_WAIT = 0.5, 0.1  # longest sleep of the loop while running / while stopping
POLL_RETRIES = 3  # a failing poll is retried this often (with back-off); then its jobs are lost


class Poller:
    def __init__(self, state: LoopState, events: Any, finish: Callable[[Any, JobStatus], None]):
        self.state, self.events, self.finish = state, events, finish
        self._cadence: dict[str, float] = {}  # backend name -> seconds between its polls now
        self._next_poll: dict[str, float] = {}  # backend name -> when it may be polled again
        self._errors: dict[str, int] = {}  # backend name -> polls failed in a row
        self._shown: dict[str, int] = {}  # backend name -> how many of its notes were shown

    def poll(self) -> None:
        """Poll each backend whose turn it is; one backend per round may block, for at most the
        time until the loop has something of its own to do."""
        now = time.monotonic()
        wait = self.next_event(now)
        groups: dict[Backend, list[JobHandle]] = {}
        for active in self.state.active.values():
            groups.setdefault(active.backend, []).append(active.handle)
        changed = waited = False
        for backend, handles in groups.items():
            name = backend.name
            if self._next_poll.get(name, 0.0) > now:
                continue
            cadence = self._cadence.get(name, backend.poll_interval)
            asked = 0.0 if changed or waited else min(wait, cadence)
            waited = waited or asked > 0
            began = time.monotonic()
            try:
                statuses = backend.poll(handles, wait=asked)
            except BackendError as exc:
                self._failed(backend, handles, exc)
                changed = changed or name not in self._errors  # its jobs were just lost
                continue
            self._errors.pop(name, None)
            self._show_notes(backend)
            done = self._take(statuses)
            changed = changed or bool(done)
            # a poll that blocked as long as it was asked may be called again at once (local);
            # one that answered sooner waits out its cadence, which doubles while nothing ends
            blocked = time.monotonic() - began >= asked
            self._cadence[name] = backend.poll_interval if done else min(backend.poll_max_interval, cadence * 2)
            self._next_poll[name] = began if done or blocked else began + cadence
        if not changed:
            due = min([now + wait, *(self._next_poll.get(b.name, now) for b in groups)])
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)

    def _show_notes(self, backend: Backend) -> None:
        notes = backend.notes
        for note in notes[self._shown.get(backend.name, 0):]:
            self.events.note(f"{backend.name}: {note}")
        self._shown[backend.name] = len(notes)

    def next_event(self, now: float) -> float:
        """Seconds until the loop has something to do of its own (a retry due, a time limit)."""
        state = self.state
        wait = IDLE_WAIT if not state.stopping else STOP_WAIT
        for due, _, _ in state.delayed:
            wait = min(wait, max(0.0, due - now))
        for active in state.active.values():
            for moment in (active.deadline, active.kill_at):
                if moment is not None:
                    wait = min(wait, max(0.0, moment - now))
        return wait

    def _take(self, statuses: dict[str, JobStatus]) -> list[Any]:
        """Finish the attempts that ended; start the clock of those that began running."""
        done = []
        for job_id, status in statuses.items():
            active = self.state.active.get(job_id)
            if active is None:
                continue
            if status.state.terminal:
                done.append(active)
            elif status.state is JobState.RUNNING and active.timed and active.deadline is None:
                start_clock(active, status.started)
        for active in done:
            self.finish(active, statuses[active.handle.job_id])
        if done:
            done[0].backend.forget(a.handle for a in done)
        return done

    def _failed(self, backend: Backend, handles: list[JobHandle], exc: BackendError) -> None:
        """Retry a failing poll with back-off; after POLL_RETRIES more failures its jobs are lost."""
        name = backend.name
        failures = self._errors[name] = self._errors.get(name, 0) + 1
        if failures <= POLL_RETRIES:
            self.events.note(f"{name}: poll failed ({failures} of {POLL_RETRIES + 1} tries): {exc}")
            delay = min(backend.poll_max_interval, backend.poll_interval * 2 ** failures)
            self._next_poll[name] = time.monotonic() + delay
            return
        del self._errors[name]
        message = f"lost: the {name} backend could not be polled {failures} times in a row: {exc}"
        try:
            backend.cancel(handles, force=True)  # it may still run; it must not run on unwatched
        except BackendError:
            pass
        lost = [self.state.active[h.job_id] for h in handles if h.job_id in self.state.active]
        for active in lost:
            self.finish(active, JobStatus(active.handle, JobState.FAILED, failure=LOST, message=message))
        try:
            backend.forget(handles)
        except BackendError:
            pass
