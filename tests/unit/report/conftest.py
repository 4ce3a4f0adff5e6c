"""A fake project whose journal and run directories are written through the runner's own
Journal and rundir classes, so the report reads exactly the format the runner writes."""

from __future__ import annotations

import json

from pathlib import Path

import pytest

from repropack.run import rundir
from repropack.run.journal import Journal

RUN = "20260101T000000Z-abc123"
T0 = 1_700_000_000.0


class FakeRun:
    def __init__(self, root: Path, manifest: str | None = None):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        if manifest is not None:
            (root / "repropack.toml").write_text(manifest, encoding="utf-8")
        self.journal = Journal(root / ".repropack" / "journal.jsonl", RUN)
        self.total = 0

    def start(self, total: int, argv=("repropack", "run")) -> None:
        self.total = total
        self.journal.append("run", start=T0, argv=list(argv), host="box", profile=None, pid=1, instances=total)

    def _dir(self, iid: str) -> rundir.InstanceDir:
        return rundir.instance_dir(self.root, RUN, iid)

    def instance(self, iid: str, step: str, start: float, wall: float, *, cpu: float = 0.1, rss: int = 10_000_000,
                 memory: int | None = None, cpus: int = 1, fail: str | None = None, attempt: int = 1,
                 inputs=(), outputs=(), stderr: str = "", stdout: str = "", command: str = "true",
                 final: bool = True) -> None:
        idir = self._dir(iid)
        idir.path.mkdir(parents=True, exist_ok=True)
        (idir.path / rundir.INSTANCE_JSON).write_text(
            json.dumps({"id": iid, "step": step, "inputs": list(inputs), "outputs": list(outputs)}))
        adir = idir.attempt(attempt)
        adir.path.mkdir(parents=True, exist_ok=True)
        adir.script.write_text(f'#!/usr/bin/env bash\n# repropack step "{iid}" attempt {attempt}\nset -euo pipefail\n{command}\n')
        adir.stderr.write_text(stderr)
        adir.stdout.write_text(stdout)
        req = {"cpus": cpus, "memory": memory, "time": None, "gpus": 0}
        self.journal.append("start", id=iid, attempt=attempt, time=T0 + start, backend="local", runtime="host",
                            job="1", req=req)
        metrics = {"start": T0 + start, "end": T0 + start + wall, "wall": wall, "cpu": cpu, "peak_rss": rss,
                   "requested": req, "failure": fail}
        rel = str(idir.path.relative_to(self.root))
        if fail is None:
            self.journal.append("attempt", id=iid, attempt=attempt, status="ok", metrics=metrics)
            self.journal.append("done", id=iid, step=step, key="k", outputs={o: "0" * 64 for o in outputs},
                                start=T0 + start, end=T0 + start + wall, attempts=attempt, dir=rel)
        else:
            self.journal.append("attempt", id=iid, attempt=attempt, status="failed", failure=fail,
                                message=f"{fail} happened", exit=3, signal=None, metrics=metrics)
            if final:
                self.journal.append("failed", id=iid, step=step, failure=fail, message=f"{fail} happened",
                                    attempts=attempt, dir=rel)

    def end(self, status: str = "ok", at: float = 10.0) -> None:
        self.journal.append("end", status=status, time=T0 + at)
        self.journal.close()


@pytest.fixture
def fake_run(tmp_path):
    def make(manifest: str | None = None) -> FakeRun:
        return FakeRun(tmp_path / "proj", manifest)

    return make
