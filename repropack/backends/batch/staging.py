"""Moving files between the project and the bucket, on the runner's side.

Layout under the profile's ``s3://bucket/prefix``:

``cas/sha256/<hex>``
    inputs, sources and the job-side script, keyed by content: uploaded once, reused by every later
    job and run that reads the same bytes (a lifecycle rule may expire them).
``runs/<run-id>/...``
    what one run needs while it runs -- task plans (presigned URLs), receipts (what the runner must
    know to collect a job, also after a restart), outputs, streams and results records -- removed
    with the run's unfinished multipart uploads when the run ends.

A job reads and writes only through presigned URLs made here. What arrives is checked: every output
is downloaded beside its destination, its sha256 compared with the one the job side computed, and
only a match is moved into place (a mismatch is downloaded once more, then the attempt fails).
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from repropack.backends.batch import aws
from repropack.backends.batch.settings import BatchSettings
from repropack.errors import BackendError
from repropack.run.safepath import ProjectTree, UnsafePath

CHUNK = 1 << 20
PRESIGN_MIN = 12 * 3600  # a queued job may wait long before it starts reading
PRESIGN_MAX = 7 * 24 * 3600  # SigV4's limit
STAGE_SCRIPT = Path(__file__).with_name("stage.py")
# The container's command: fetch the job side, check it is the script we uploaded, run it with the plan.
BOOT = ("import hashlib,sys,urllib.request as u\n"
        "c=u.urlopen(sys.argv[1],timeout=120).read()\n"
        "if hashlib.sha256(c).hexdigest()!=sys.argv[2]:sys.exit('repropack: the job-side script changed')\n"
        "sys.argv=['stage.py',sys.argv[3]]\n"
        "exec(compile(c,'stage.py','exec'),{'__name__':'__main__'})\n")


class DigestMismatch(Exception):
    pass


class Stager:
    def __init__(self, clients: aws.Clients, settings: BatchSettings, run_id: str, project: Path):
        self.c = clients
        self.s = settings
        self.run_id = run_id
        self.project = Path(project)
        self._known: dict[str, tuple[str, int]] = {}  # project path -> (sha256, size) uploaded this run
        self._present: set[str] = set()  # cas keys known to exist
        self._stage: tuple[str, str] | None = None

    def run_key(self, *parts: str) -> str:
        return self.s.key("runs", self.run_id, *parts)

    # -- uploads -------------------------------------------------------------------------
    def _cas_put(self, digest: str, body: Any) -> str:
        key = self.s.key("cas", "sha256", digest)
        if key in self._present:
            return key
        from botocore.exceptions import ClientError

        try:
            self.c.s3.head_object(Bucket=self.s.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise aws.error(f"cannot check s3://{self.s.bucket}/{key}", exc) from None
            if callable(body):
                body = body()
            aws.call(f"cannot upload to s3://{self.s.bucket}/{key}", self.c.s3.upload_fileobj,
                     Fileobj=body, Bucket=self.s.bucket, Key=key)
        except aws.aws_errors() as exc:
            raise aws.error(f"cannot check s3://{self.s.bucket}/{key}", exc) from None
        self._present.add(key)
        return key

    def stage_script(self) -> tuple[str, str]:
        """(presigned URL, sha256) of the job-side script in the bucket."""
        if self._stage is None:
            import io

            code = STAGE_SCRIPT.read_bytes()
            digest = hashlib.sha256(code).hexdigest()
            key = self._cas_put(digest, lambda: io.BytesIO(code))
            self._stage = (self.get_url(key, PRESIGN_MAX), digest)
        return self._stage

    def upload_input(self, tree: ProjectTree, rel: str) -> tuple[str, str, int]:
        """(cas key, sha256, size) of a project file, uploaded unless the bucket has those bytes."""
        try:
            fd = tree.open_beneath(rel, os.O_RDONLY | os.O_CLOEXEC)
        except (OSError, UnsafePath) as exc:
            raise BackendError(aws.NAME, f"cannot stage {rel}: {exc}") from None
        with os.fdopen(fd, "rb") as handle:
            if not os.path.isfile(f"/proc/self/fd/{handle.fileno()}"):
                raise BackendError(aws.NAME, f"cannot stage {rel}: folder inputs are not staged yet (only files)")
            digest, size = hashlib.sha256(), 0
            for block in iter(lambda: handle.read(CHUNK), b""):
                digest.update(block)
                size += len(block)
            hexdigest = digest.hexdigest()

            def rewind() -> Any:
                handle.seek(0)
                return handle

            key = self._cas_put(hexdigest, rewind)
        self._known[rel] = (hexdigest, size)
        return key, hexdigest, size

    def put_json(self, key: str, value: Any) -> None:
        aws.call(f"cannot write s3://{self.s.bucket}/{key}", self.c.s3.put_object, Bucket=self.s.bucket, Key=key,
                 Body=json.dumps(value, sort_keys=True).encode(), ContentType="application/json")

    def get_json(self, key: str) -> Any | None:
        """The object's JSON, or None when it does not exist."""
        data = self.get_bytes(key)
        return None if data is None else json.loads(data)

    def get_bytes(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            return self.c.s3.get_object(Bucket=self.s.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise aws.error(f"cannot read s3://{self.s.bucket}/{key}", exc) from None
        except aws.aws_errors() as exc:
            raise aws.error(f"cannot read s3://{self.s.bucket}/{key}", exc) from None

    # -- presigned URLs ------------------------------------------------------------------
    def get_url(self, key: str, expires: int) -> str:
        return self.c.s3.generate_presigned_url("get_object", Params={"Bucket": self.s.bucket, "Key": key},
                                                ExpiresIn=expires)

    def put_url(self, key: str, expires: int) -> str:
        return self.c.s3.generate_presigned_url("put_object", Params={"Bucket": self.s.bucket, "Key": key},
                                                ExpiresIn=expires)

    # -- downloads -----------------------------------------------------------------------
    def download_verified(self, key: str, target: Path, want: str) -> None:
        """Download ``key`` to ``target``, twice at most, until its sha256 is ``want``; else DigestMismatch."""
        got = ""
        for _ in range(2):
            digest = hashlib.sha256()
            try:
                body = self.c.s3.get_object(Bucket=self.s.bucket, Key=key)["Body"]
                with open(target, "wb") as out:
                    for block in iter(lambda: body.read(CHUNK), b""):
                        digest.update(block)
                        out.write(block)
            except aws.aws_errors() as exc:
                raise aws.error(f"cannot download s3://{self.s.bucket}/{key}", exc) from None
            got = digest.hexdigest()
            if got == want:
                return
        target.unlink(missing_ok=True)
        raise DigestMismatch(f"expected sha256:{want}, downloaded sha256:{got}")

    def place(self, tree: ProjectTree, downloaded: Path, rel: str, *, packed: bool) -> None:
        """Move a verified download to project path ``rel`` (a folder output arrives as a tar)."""
        if not packed:
            fd, name = tree.parent(rel, create=True)
            try:
                os.rename(downloaded, name, dst_dir_fd=fd)
            finally:
                os.close(fd)
            return
        tree.remove(rel)
        tree.makedirs(rel)
        fd = tree.open_dir(rel)
        try:
            target = f"/proc/self/fd/{fd}"
            with tarfile.open(downloaded) as tar:
                tar.extractall(target, filter="data")  # no absolute paths, no links out, no devices
        finally:
            os.close(fd)
            downloaded.unlink(missing_ok=True)

    # -- clean-up ------------------------------------------------------------------------
    def remove_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` and abort its unfinished multipart uploads."""
        removed = 0
        s3, bucket = self.c.s3, self.s.bucket
        try:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                for start in range(0, len(keys), 1000):
                    s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[start:start + 1000], "Quiet": True})
                removed += len(keys)
            for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
                for upload in page.get("Uploads", []):
                    s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        except aws.aws_errors() as exc:
            raise aws.error(f"cannot clean up s3://{bucket}/{prefix}", exc) from None
        return removed


def presign_expiry(time_limit: int | None) -> int:
    return min(PRESIGN_MAX, PRESIGN_MIN + 2 * (time_limit or 0))


def stage_inputs(stager: Stager, tree: ProjectTree, paths: Sequence[str], expires: int) -> list[dict[str, Any]]:
    out = []
    for rel in dict.fromkeys(paths):
        key, digest, size = stager.upload_input(tree, rel)
        out.append({"path": rel, "url": stager.get_url(key, expires), "sha256": digest, "size": size})
    return out
