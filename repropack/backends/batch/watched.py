"""One attempt the aws-batch backend watches (shared by submit, poll and adopt)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from repropack.backends.base import JobHandle
from repropack.backends.batch.settings import BatchSettings


@dataclass
class Watched:
    handle: JobHandle
    receipt: dict[str, Any]
    settings: BatchSettings
    batch_id: str  # the Batch job now running this attempt (changes when resubmitted)
    submit: dict[str, Any] = field(default_factory=dict)  # SubmitJob arguments to resubmit with
    resubmits: list[str] = field(default_factory=list)  # why each earlier job was resubmitted
