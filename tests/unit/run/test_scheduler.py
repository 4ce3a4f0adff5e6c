from repropack.run.scheduler import (
    Capacity,
    Demand,
    Scheduler,
    capacity,
    machine_cpus,
    machine_memory,
)

GB = 1_000_000_000


def test_cpus_limit_how_many_start():
    s = Scheduler(Capacity(cpus=2, memory=8 * GB))
    for i in range(5):
        s.push(i, f"i{i}", Demand(cpus=1))
    assert [i for i, _ in s.take()] == ["i0", "i1"]
    assert s.take() == []
    s.release("i0")
    assert [i for i, _ in s.take()] == ["i2"]


def test_memory_and_jobs_limit():
    s = Scheduler(Capacity(cpus=8, memory=3 * GB, jobs=2))
    for i in range(4):
        s.push(i, f"i{i}", Demand(cpus=1, memory=GB))
    assert len(s.take()) == 2  # jobs cap
    s2 = Scheduler(Capacity(cpus=8, memory=3 * GB))
    for i in range(4):
        s2.push(i, f"i{i}", Demand(cpus=1, memory=2 * GB))
    assert len(s2.take()) == 1  # memory cap


def test_order_is_topological_with_backfill():
    s = Scheduler(Capacity(cpus=2, memory=8 * GB))
    s.push(0, "big", Demand(cpus=2))
    s.push(1, "small", Demand(cpus=1))
    assert [i for i, _ in s.take()] == ["big"]
    s.release("big")
    s.push(2, "big2", Demand(cpus=2))
    s.push(3, "small2", Demand(cpus=1))
    started = [i for i, _ in s.take()]
    assert started[0] == "small"  # first in order wins; big2 does not fit beside it
    assert "big2" not in started


def test_never_fits_names_the_resource():
    s = Scheduler(Capacity(cpus=2, memory=4 * GB))
    assert s.never_fits(Demand(cpus=2, memory=4 * GB)) is None
    assert "3 cpus" in s.never_fits(Demand(cpus=3))
    assert "memory" in s.never_fits(Demand(memory=5 * GB))
    assert "gpus" in s.never_fits(Demand(gpus=1))


def test_capacity_caps():
    cap = capacity(cpus=1, memory=1000)
    assert cap.cpus == 1 and cap.memory == 1000
    assert capacity().cpus == machine_cpus()
    assert 0 < machine_memory()


def test_drop_ready_returns_waiting_ids():
    s = Scheduler(Capacity(cpus=1, memory=GB))
    s.push(0, "a", Demand())
    s.push(1, "b", Demand())
    s.take()
    assert s.drop_ready() == ["b"]
    assert len(s) == 0
