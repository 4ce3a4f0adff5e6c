"""The figures `status --watch` draws, from a hand-made run (clock given)."""

from __future__ import annotations

from repropack.observe.live import AttemptEnd, InstanceLive, LiveRun
from repropack.observe.watch import render, snapshot


def _live():
    live = LiveRun("R", {"start": 0.0, "instances": 5})
    for iid, state in (("a[1]", "done"), ("a[2]", "done"), ("a[3]", "running"), ("a[4]", "queued"), ("b", "failed")):
        live.instances[iid] = InstanceLive(iid, iid.split("[")[0], state=state, started=50.0 if state == "running"
                                           else None, failure="exit" if state == "failed" else None)
    for iid in ("a[1]", "a[2]"):
        live.attempts.append(AttemptEnd(iid, "a", 1, True, None, 40.0, None, None, 40.0))
    return live


def test_counts_throughput_eta_slowest():
    snap = snapshot(_live(), now=60.0)
    assert snap.steps["a"] == {"running": 1, "queued": 1, "done": 2, "failed": 0, "cached": 0}
    assert snap.total == 5 and snap.finished == 3
    assert snap.throughput == 3.0  # 3 finished in one minute
    assert snap.eta == 30.0 + 40.0  # the running one has 30 s of its step's median left, the queued one 40 s
    assert snap.slowest == [("a[3]", 10.0)]
    assert [f["id"] for f in snap.failures] == ["b"] and snap.status == "running"


def test_no_eta_before_anything_finished_and_ended_runs():
    live = _live()
    live.attempts.clear()
    assert snapshot(live, now=60.0).eta is None
    live.ended, live.status, live.end_time = True, "failed", 90.0
    snap = snapshot(live, now=1000.0)
    assert (snap.status, snap.eta, snap.elapsed) == ("failed", None, 90.0)
    assert snapshot(_live(), now=60.0, running=False).status == "did-not-end"
    render(snap)  # draws without a terminal
