"""The job side of the aws-batch backend: staging and results inside any user container.

Stdlib-only and self-contained on purpose: it is uploaded to the run's bucket and started by
the job's command (``python3 -c BOOT STAGE_URL STAGE_SHA256 PLAN_URL``) inside the step's own
image, where repropack is not installed. It is given presigned URLs only: no credential enters
the container, and it needs nothing but ``python3``'s standard library (``bash`` if the image has
one, else ``sh``, runs the step).

For one task of the plan (an array job's child picks its own by ``AWS_BATCH_JOB_ARRAY_INDEX``) it

- downloads each input into a private working folder and checks its sha256 (a changed object
  ends the job with STAGING_FAILED, the step never sees it);
- runs the step there, with its stdout and stderr in files, measuring wall time, CPU time
  (``RUSAGE_CHILDREN``) and peak memory (the container's cgroup, else ``ru_maxrss``);
- hashes each declared output that exists (files as they are, folders as one tar) and uploads it;
- uploads the streams and its results record (records format 2 fields), then copies the streams
  to its own stdout/stderr (CloudWatch Logs) and exits with the step's exit status.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request

FORMAT = 2
CHUNK = 1 << 20
STAGING_FAILED = 96  # exit status of a job whose inputs could not be staged (the step did not run)
UPLOAD_FAILED = 95  # the step ran but its outputs or results could not be uploaded
ATTEMPTS = 4  # tries of each transfer (a network hiccup is not the step's failure)


def array_index(environ=os.environ):
    """This child's index: AWS sets AWS_BATCH_JOB_ARRAY_INDEX (moto only suffixes AWS_BATCH_JOB_ID);
    a child resubmitted alone after its machine went away is told REPROPACK_TASK_INDEX."""
    if environ.get("REPROPACK_TASK_INDEX", "").isdigit():
        return int(environ["REPROPACK_TASK_INDEX"]), "REPROPACK_TASK_INDEX"
    value = environ.get("AWS_BATCH_JOB_ARRAY_INDEX")
    if value not in (None, ""):
        return int(value), "AWS_BATCH_JOB_ARRAY_INDEX"
    job = environ.get("AWS_BATCH_JOB_ID", "")
    if ":" in job and job.rsplit(":", 1)[1].isdigit():
        return int(job.rsplit(":", 1)[1]), "AWS_BATCH_JOB_ID"
    return None, None


def _retry(what, action):
    delay = 0.5
    for n in range(ATTEMPTS):
        try:
            return action()
        except OSError as exc:  # urllib.error.URLError and HTTPError are OSErrors
            if n == ATTEMPTS - 1:
                raise OSError(f"{what}: {exc}") from None
            time.sleep(delay)
            delay *= 2
    return None


def fetch_bytes(url):
    return _retry("download", lambda: urllib.request.urlopen(url, timeout=120).read())


def download(url, target):
    """Stream ``url`` into ``target``; returns (sha256 hex, size)."""

    def once():
        digest, size = hashlib.sha256(), 0
        with urllib.request.urlopen(url, timeout=120) as response, open(target, "wb") as out:
            while True:
                block = response.read(CHUNK)
                if not block:
                    break
                digest.update(block)
                size += len(block)
                out.write(block)
        return digest.hexdigest(), size

    return _retry("download", once)


def upload(url, path=None, data=None):
    # an explicit content type: without one urllib sends a form type, which some servers parse away
    def once():
        body = data if path is None else open(path, "rb")
        try:
            size = len(body) if path is None else os.path.getsize(path)
            request = urllib.request.Request(url, data=body, method="PUT", headers={
                "Content-Type": "application/octet-stream", "Content-Length": str(size)})
            with urllib.request.urlopen(request, timeout=600) as response:
                response.read()
        finally:
            if path is not None:
                body.close()

    _retry("upload", once)


def sha256_file(path):
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while True:
            block = handle.read(CHUNK)
            if not block:
                break
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def safe_rel(path):
    """A task's paths are project-relative and never climb out of the working folder."""
    parts = path.split("/")
    if path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"refusing the path {path!r}")
    return os.path.join(*parts)


def tar_folder(folder, target):
    """One tar of a folder output, members sorted and owner-free (the same tree, the same bytes)."""
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
        for top, dirs, files in os.walk(folder):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                full = os.path.join(top, name)
                info = tar.gettarinfo(full, os.path.relpath(full, folder))
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = 0
                if info.isreg():
                    with open(full, "rb") as handle:
                        tar.addfile(info, handle)
                else:
                    tar.addfile(info)


def peak_memory():
    """The container's peak memory (cgroup v2 memory.peak, v1 max_usage), else None."""
    for name in ("/sys/fs/cgroup/memory.peak", "/sys/fs/cgroup/memory/memory.max_usage_in_bytes"):
        try:
            with open(name, encoding="ascii") as handle:
                return int(handle.read().strip())
        except (OSError, ValueError):
            continue
    return None


def stage_inputs(task, work):
    for item in task.get("inputs", []):
        target = os.path.join(work, safe_rel(item["path"]))
        os.makedirs(os.path.dirname(target) or work, exist_ok=True)
        got, size = download(item["url"], target)
        if got != item["sha256"]:
            raise ValueError(f"input {item['path']} changed since it was uploaded: expected sha256:{item['sha256']}, "
                             f"got sha256:{got} ({size} bytes); the step did not run")


def run_step(task, work, home, tmp, streams):
    env = dict(task.get("env", {}))
    env.update({"HOME": home, "TMPDIR": tmp, "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")})
    for name in ("AWS_BATCH_JOB_ID", "AWS_BATCH_JOB_ARRAY_INDEX", "AWS_BATCH_JOB_ATTEMPT"):
        if name in os.environ:
            env[name] = os.environ[name]
    script = os.path.join(tmp, "script.sh")
    with open(script, "w", encoding="utf-8") as handle:
        handle.write(task["script"])
    shell = shutil.which("bash")
    argv = [shell, "-euo", "pipefail", script] if shell else ["sh", "-eu", script]
    for rel in task.get("outputs", []):
        os.makedirs(os.path.dirname(os.path.join(work, safe_rel(rel["path"]))) or work, exist_ok=True)
    start, clock = time.time(), time.monotonic()
    with open(streams["stdout"], "wb") as out, open(streams["stderr"], "wb") as err:
        code = subprocess.call(argv, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    wall = time.monotonic() - clock
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak, source = peak_memory(), "cgroup"
    if peak is None:
        peak, source = usage.ru_maxrss * 1024, "rusage"
    metrics = {"start": start, "end": start + wall, "wall": round(wall, 6),
               "cpu": round(usage.ru_utime + usage.ru_stime, 6), "cpu_source": "rusage",
               "peak_rss": peak, "peak_rss_source": source}
    return (128 - code if code < 0 else code), metrics


def upload_outputs(task, work, scratch):
    done = []
    for n, item in enumerate(task.get("outputs", [])):
        path = os.path.join(work, safe_rel(item["path"]))
        if os.path.islink(path) or not os.path.exists(path):
            continue  # the runner names what is missing (or a link) from the record
        kind = "file"
        if os.path.isdir(path):
            kind, packed = "tree", os.path.join(scratch, f"out-{n}.tar")
            tar_folder(path, packed)
            path = packed
        digest, size = sha256_file(path)
        upload(item["url"], path=path)
        done.append({"path": item["path"], "sha256": digest, "size": size, "type": kind, "packed": kind == "tree"})
    return done


def main(argv):
    plan = json.loads(fetch_bytes(argv[1]))
    index, index_from = array_index()
    task = plan["tasks"][index if index is not None and len(plan["tasks"]) > 1 else 0]
    job_id = os.environ.get("AWS_BATCH_JOB_ID", "")
    base = tempfile.mkdtemp(prefix="repropack-")
    work, home, tmp, scratch = (os.path.join(base, n) for n in ("project", "home", "tmp", "scratch"))
    for folder in (work, home, tmp, scratch):
        os.makedirs(folder)
    streams = {"stdout": os.path.join(scratch, "stdout"), "stderr": os.path.join(scratch, "stderr")}
    record = {"format": FORMAT, "instance": task["instance"], "attempt": task["attempt"],
              "writer": "batch-" + job_id.replace(":", "-"), "backend": "aws-batch", "job_id": job_id,
              "array_index": index, "array_index_from": index_from, "outputs": [], "failure": None, "message": None}
    code = 0
    try:
        stage_inputs(task, work)
    except (OSError, ValueError) as exc:
        code = STAGING_FAILED
        record.update(failure="staging", message=str(exc), exit_status=code)
        sys.stderr.write(f"repropack: {exc}\n")
    if code == 0:
        code, metrics = run_step(task, work, home, tmp, streams)
        record.update(metrics, exit_status=code, signal=code - 128 if 128 < code <= 192 else None)
        try:
            if code == 0:
                record["outputs"] = upload_outputs(task, work, scratch)
            for name, path in streams.items():
                if os.path.getsize(path):
                    upload(task["streams"][name], path=path)
        except OSError as exc:
            code = UPLOAD_FAILED
            record.update(failure="staging", message=f"the step ran but its outputs could not be uploaded: {exc}")
    try:
        upload(task["results"], data=json.dumps(record, sort_keys=True).encode())
    except OSError as exc:
        sys.stderr.write(f"repropack: cannot upload the results record: {exc}\n")
        code = code or UPLOAD_FAILED
    for name, target in (("stdout", sys.stdout.buffer), ("stderr", sys.stderr.buffer)):
        if os.path.exists(streams[name]):
            with open(streams[name], "rb") as handle:
                shutil.copyfileobj(handle, target)
            target.flush()
    shutil.rmtree(base, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
