"""The aws-batch backend: each attempt a Batch job in the step's image, files staged through S3.

Submit: the image is pushed to the profile's registry (by digest), a job definition is reused or
registered for that image and the resources, the attempt's inputs and sources are uploaded (once,
by content) and a *task* -- the script, the environment, presigned URLs for every input, output,
stream and the results record -- is written to the run's prefix. The job's command fetches the
job-side script (:mod:`repropack.backends.batch.stage`) and runs the task. The instances of one
step that are submitted together become one array job; each child reads its own task.

Poll: one DescribeJobs per 100 jobs. A job that ended because its machine went away (Spot reclaim,
host terminated) is submitted again with the same task, up to ``RESUBMITS`` times, without
counting against the step's retries. A terminal job is then collected: its results record, its
streams and CloudWatch log are copied into the attempt's folder, and every output it reported is
downloaded and verified against the digest the job side computed before it is moved into place.

A *receipt* of each submission (what the runner needs to collect it) lives in the bucket and is
named by the job's tags, so a restarted runner can :meth:`adopt` the jobs of the one that died.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from repropack.backends.base import LOST, Backend, BackendContext, Job, JobHandle, JobState, JobStatus
from repropack.backends.batch import aws, images
from repropack.backends.batch import status as batch_status
from repropack.backends.batch.collect import collect
from repropack.backends.batch.settings import BatchSettings, settings as read_settings
from repropack.backends.batch.staging import BOOT, Stager, presign_expiry, stage_inputs
from repropack.backends.batch.watched import Watched
from repropack.backends.resources import batch_requirements
from repropack.errors import BackendError
from repropack.run.safepath import ProjectTree

NAME = aws.NAME
DEFAULT_MEMORY_MIB = 2048
RESUBMITS = 3  # infrastructure failures of one attempt resubmitted before it is lost
TAG_RECEIPT, TAG_RUN = "repropack-receipt", "repropack-run"
_JOB_NAME = re.compile(r"[^A-Za-z0-9_-]")


class BatchBackend(Backend):
    name = NAME
    poll_interval = 1.0
    poll_max_interval = 10.0

    def __init__(self, context: BackendContext):
        if context.root is None:
            raise BackendError(NAME, "the runner gave no project folder")
        self.run_id = context.run_id
        self.project = Path(context.root)
        self.settings = {p.name: read_settings(p) for p in context.profiles}
        self._clients: dict[str, aws.Clients] = {}
        self._stagers: dict[str, Stager] = {}
        self._definitions: dict[tuple[str, str], str] = {}
        self._images: dict[tuple[str, str | None], str] = {}
        self._watch: dict[str, Watched] = {}
        self._finished: dict[str, JobStatus] = {}
        self.notes: list[str] = []
        for s in self.settings.values():
            self.preflight(s)

    # -- set-up --------------------------------------------------------------------------
    def clients(self, s: BatchSettings) -> aws.Clients:
        if s.profile not in self._clients:
            self._clients[s.profile] = aws.Clients(s)
        return self._clients[s.profile]

    def stager(self, s: BatchSettings) -> Stager:
        if s.profile not in self._stagers:
            self._stagers[s.profile] = Stager(self.clients(s), s, self.run_id, self.project)
        return self._stagers[s.profile]

    def preflight(self, s: BatchSettings) -> None:
        """Before any job: the credentials work, the queue and the bucket exist (one clear line if not)."""
        c = self.clients(s)
        where = s.endpoint or f"region {c.region}"
        reply = aws.call(f"profile {s.profile!r}: cannot reach AWS Batch at {where}", c.batch.describe_job_queues,
                         jobQueues=[s.queue])
        queues = reply.get("jobQueues", [])
        if not queues:
            raise BackendError(NAME, f"profile {s.profile!r}: the job queue {s.queue!r} does not exist at {where}",
                               hint="create it (docs/cloud.md) or fix `queue` in the profile")
        if queues[0].get("state") != "ENABLED":
            raise BackendError(NAME, f"profile {s.profile!r}: the job queue {s.queue!r} is {queues[0].get('state')}")
        from botocore.exceptions import ClientError

        try:
            c.s3.head_bucket(Bucket=s.bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise BackendError(NAME, f"profile {s.profile!r}: the bucket {s.bucket!r} does not exist at {where}",
                                   hint="create it (docs/cloud.md) or fix `bucket` in the profile") from None
            raise aws.error(f"profile {s.profile!r}: cannot use the bucket {s.bucket!r}", exc) from None
        except aws.aws_errors() as exc:
            raise aws.error(f"profile {s.profile!r}: cannot use the bucket {s.bucket!r}", exc) from None

    def _settings_of(self, job: Job) -> BatchSettings:
        s = self.settings.get(job.profile)
        if s is None:
            raise BackendError(NAME, f"{job.instance_id}: profile {job.profile!r} was not prepared for this run")
        return s

    def _image(self, s: BatchSettings, reference: str | None) -> str:
        if not reference:
            raise BackendError(NAME, "no image to run (run `repropack build`, or name one in [image] name)")
        key = (reference, s.registry)
        if key not in self._images:
            self._images[key] = images.pushed(reference, s.registry)
        return self._images[key]

    def _job_definition(self, s: BatchSettings, image: str, requirements: dict[str, Any]) -> str:
        """A definition per image digest and resources: reused when one is registered already."""
        if s.job_definition:
            return s.job_definition
        spec = json.dumps({"image": image, **requirements}, sort_keys=True)
        name = "repropack-" + hashlib.sha256(spec.encode()).hexdigest()[:20]
        key = (s.profile, name)
        if key not in self._definitions:
            batch = self.clients(s).batch
            found = aws.call("cannot list job definitions", batch.describe_job_definitions, jobDefinitionName=name,
                             status="ACTIVE").get("jobDefinitions", [])
            if found:
                arn = max(found, key=lambda d: d.get("revision", 0))["jobDefinitionArn"]
            else:
                props = {"image": image, "command": ["python3", "-c", "raise SystemExit('repropack sets the command')"],
                         "resourceRequirements": requirements["resourceRequirements"]}
                extra = {"timeout": requirements["timeout"]} if "timeout" in requirements else {}
                arn = aws.call("cannot register a job definition", batch.register_job_definition, jobDefinitionName=name,
                               type="container", containerProperties=props, retryStrategy={"attempts": 1},
                               tags={"repropack": "1"}, **extra)["jobDefinitionArn"]
            self._definitions[key] = arn
        return self._definitions[key]

    # -- submit --------------------------------------------------------------------------
    def submit(self, job: Job) -> JobHandle:
        result = self.submit_many([job])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def submit_many(self, jobs: Sequence[Job]) -> list[JobHandle | Exception]:
        """Jobs of one step, profile, image and resources go out as one array job."""
        groups: dict[Any, list[int]] = {}
        for n, job in enumerate(jobs):
            groups.setdefault((job.profile, job.step or job.instance_id, job.image, job.resources), []).append(n)
        out: list[JobHandle | Exception] = [BackendError(NAME, "not submitted")] * len(jobs)
        for indexes in groups.values():
            group = [jobs[n] for n in indexes]
            try:
                handles: list[JobHandle | Exception] = list(self._submit_group(group))
            except (BackendError, OSError) as exc:
                handles = [exc] * len(group)
            for n, handle in zip(indexes, handles):
                out[n] = handle
        return out

    def _submit_group(self, jobs: list[Job]) -> list[JobHandle]:
        first = jobs[0]
        s = self._settings_of(first)
        stager = self.stager(s)
        requirements = _requirements(first.resources)
        definition = self._job_definition(s, self._image(s, first.image), requirements)
        expires = presign_expiry(first.resources.time)
        tasks, receipts = [], []
        with ProjectTree(self.project) as tree:
            for job in jobs:
                task, receipt = self._task(job, s, stager, tree, expires)
                tasks.append(task)
                receipts.append(receipt)
        token = _token(first) + (f"+{len(jobs)}" if len(jobs) > 1 else "")
        plan_key, receipt_key = stager.run_key("plans", token + ".json"), stager.run_key("receipts", token + ".json")
        stager.put_json(plan_key, {"format": 1, "tasks": tasks})
        stager.put_json(receipt_key, {"format": 1, "profile": s.profile, "tasks": receipts})
        stage_url, stage_sha = stager.stage_script()
        command = ["python3", "-c", BOOT, stage_url, stage_sha, stager.get_url(plan_key, expires)]
        overrides = {"command": command, "resourceRequirements": requirements["resourceRequirements"]}
        submit = {"jobName": _JOB_NAME.sub("-", f"rp-{first.step or first.instance_id}")[:128],
                  "jobQueue": s.queue, "jobDefinition": definition, "containerOverrides": overrides,
                  "retryStrategy": {"attempts": 1}, "tags": {TAG_RUN: self.run_id, TAG_RECEIPT: receipt_key},
                  **({"timeout": requirements["timeout"]} if "timeout" in requirements else {})}
        array = {"arrayProperties": {"size": len(jobs)}} if len(jobs) > 1 else {}
        reply = aws.call(f"cannot submit {first.instance_id} to the job queue {s.queue!r}",
                         self.clients(s).batch.submit_job, **submit, **array)
        batch_id = reply["jobId"]
        handles = []
        for n, (job, receipt) in enumerate(zip(jobs, receipts)):
            job_id = f"{batch_id}:{n}" if array else batch_id
            handle = JobHandle(NAME, job_id, job.instance_id, job.attempt)
            # a lone resubmission of an array child runs the same task: it is told its index
            again = dict(submit, containerOverrides={**overrides, "environment": [
                {"name": "REPROPACK_TASK_INDEX", "value": str(n)}]}) if array else submit
            self._watch[job_id] = Watched(handle, receipt, s, job_id, again)
            handles.append(handle)
        return handles

    def _task(self, job: Job, s: BatchSettings, stager: Stager, tree: ProjectTree,
              expires: int) -> tuple[dict[str, Any], dict[str, Any]]:
        base = f"jobs/{_token(job)}"
        outputs = [{"path": written, "declared": final, "key": stager.run_key(base, f"out-{n}")}
                   for n, (final, written) in enumerate(job.outputs)]
        keys = {"results": stager.run_key(base, "results.json"), "stdout": stager.run_key(base, "stdout"),
                "stderr": stager.run_key(base, "stderr")}
        env = {k: v for k, v in job.env.items() if k not in ("HOME", "TMPDIR", "PATH")}
        task = {"instance": job.instance_id, "attempt": job.attempt, "script": job.script, "env": env,
                "inputs": stage_inputs(stager, tree, job.inputs, expires),
                "outputs": [{"path": o["path"], "url": stager.put_url(o["key"], expires)} for o in outputs],
                "streams": {n: stager.put_url(keys[n], expires) for n in ("stdout", "stderr")},
                "results": stager.put_url(keys["results"], expires)}
        receipt = {"instance": job.instance_id, "attempt": job.attempt, "run_id": job.run_id,
                   "attempt_dir": str(job.attempt_dir), "outputs": outputs, "keys": keys,
                   "requested": job.resources.to_record(),
                   "reserved": {"cpus": job.resources.cpus, "memory": job.resources.memory or DEFAULT_MEMORY_MIB << 20}}
        return task, receipt

    # -- poll ----------------------------------------------------------------------------
    def poll(self, handles: Sequence[JobHandle], wait: float = 0.0) -> dict[str, JobStatus]:
        out: dict[str, JobStatus] = {}
        by_profile: dict[str, list[Watched]] = {}
        for handle in handles:
            if handle.job_id in self._finished:
                out[handle.job_id] = self._finished[handle.job_id]
            elif handle.job_id in self._watch:
                w = self._watch[handle.job_id]
                by_profile.setdefault(w.settings.profile, []).append(w)
        for profile, watched in by_profile.items():
            s = self.settings[profile]
            for start in range(0, len(watched), 100):
                chunk = watched[start:start + 100]
                reply = aws.call("DescribeJobs failed", self.clients(s).batch.describe_jobs,
                                 jobs=[w.batch_id for w in chunk])
                found = {j["jobId"]: j for j in reply.get("jobs", [])}
                for w in chunk:
                    got = self._reading(w, found.get(w.batch_id))
                    if got is not None:
                        out[w.handle.job_id] = got
        return out

    def _reading(self, w: Watched, job: dict[str, Any] | None) -> JobStatus | None:
        if job is None:
            return self._finish(w, JobStatus(w.handle, JobState.FAILED, failure=LOST,
                                             message=f"Batch no longer knows the job {w.batch_id}"))
        reading = batch_status.read(job)
        if reading.state is JobState.RUNNING:
            return JobStatus(w.handle, JobState.RUNNING, started=reading.started)
        if not reading.state.terminal:
            return None
        if reading.infrastructure and w.submit and len(w.resubmits) < RESUBMITS:
            self._resubmit(w, reading.message)
            return None
        stager = self.stager(w.settings)
        status = collect(stager, w, reading, self.run_id)
        if w.receipt.get("run_id") not in (None, self.run_id):
            # adopted from a runner that died: its run's close never comes, so this attempt's objects go now
            stager.remove_prefix(w.receipt["keys"]["results"].rsplit("/", 1)[0] + "/")
        return self._finish(w, status)

    def _finish(self, w: Watched, status: JobStatus) -> JobStatus:
        self._finished[w.handle.job_id] = status
        self._watch.pop(w.handle.job_id, None)
        return status

    def _resubmit(self, w: Watched, why: str) -> None:
        """The machine went away under the job: the same task again, not a retry of the step."""
        reply = aws.call(f"cannot resubmit {w.handle.instance_id}", self.clients(w.settings).batch.submit_job,
                         **w.submit)
        w.resubmits.append(f"{w.batch_id}: {why}")
        w.batch_id = reply["jobId"]
        self.notes.append(f"{w.handle.instance_id}: resubmitted as {w.batch_id} ({why}); not counted as a retry")
        moved = w.receipt.get("keys", {}).get("results", "").rsplit("/", 1)[0] + "/moved.json"
        self.stager(w.settings).put_json(moved, {"batch_id": w.batch_id, "resubmits": w.resubmits})

    # -- cancel, adopt, forget -----------------------------------------------------------
    def cancel(self, handles: Iterable[JobHandle], *, force: bool = False) -> None:
        for handle in handles:
            w = self._watch.get(handle.job_id)
            if w is None:
                continue
            aws.call(f"cannot stop {handle.instance_id}", self.clients(w.settings).batch.terminate_job,
                     jobId=w.batch_id, reason=batch_status.CANCEL_REASON)

    def adopt(self, handles: Sequence[JobHandle]) -> None:
        """Re-attach to jobs a runner that died submitted: their receipts are named by the jobs' tags."""
        from repropack.backends.batch.adopt import adopt

        adopt(self, handles)

    def forget(self, handles: Iterable[JobHandle]) -> None:
        for handle in handles:
            self._finished.pop(handle.job_id, None)

    def close(self) -> None:
        """The run's prefix (tasks, receipts, outputs, streams) and its unfinished uploads go."""
        if self._watch:
            return  # jobs still out (the runner was stopped hard): a restarted runner adopts them
        for s in self.settings.values():
            if s.profile in self._stagers:
                stager = self._stagers[s.profile]
                stager.remove_prefix(stager.run_key() + "/")


def _requirements(resources: Any) -> dict[str, Any]:
    """Batch needs a memory figure for every job: a step that names none reserves DEFAULT_MEMORY_MIB."""
    out = batch_requirements(resources)
    if not any(r["type"] == "MEMORY" for r in out["resourceRequirements"]):
        out["resourceRequirements"].append({"type": "MEMORY", "value": str(DEFAULT_MEMORY_MIB)})
    return out


def _token(job: Job) -> str:
    """The attempt's place in the run's prefix: ``<instance folder name>/attempt-<n>``."""
    from repropack.run.rundir import instance_dirname

    return f"{instance_dirname(job.instance_id)}/attempt-{job.attempt}"


def create(context: BackendContext) -> BatchBackend:
    return BatchBackend(context)
