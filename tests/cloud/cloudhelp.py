"""Starting and driving a moto server for the aws-batch tests (see conftest.py)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
# Distinctive planted credentials: the credentials test greps for them in everything a run leaves.
ACCESS_KEY = "AKIAREPROPACKPLANTED1"
SECRET_KEY = "repropack-planted-secret-7f3a9c1e5b2d"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class MotoServer:
    process: subprocess.Popen
    port: int
    log: Path
    role: str = ""
    queues: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def create_queue(self, name: str) -> str:
        batch = self.client("batch")
        if not self.role:
            iam = self.client("iam")
            self.role = iam.create_role(RoleName="repropack-batch", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        ce = batch.create_compute_environment(computeEnvironmentName=f"{name}-ce", type="UNMANAGED",
                                              state="ENABLED", serviceRole=self.role)
        queue = batch.create_job_queue(jobQueueName=name, state="ENABLED", priority=1, computeEnvironmentOrder=[
            {"order": 1, "computeEnvironment": ce["computeEnvironmentArn"]}])
        self.queues[name] = queue["jobQueueArn"]
        return queue["jobQueueArn"]

    def create_bucket(self, name: str) -> None:
        self.client("s3").create_bucket(Bucket=name)

    def objects(self, bucket: str) -> dict[str, bytes]:
        s3 = self.client("s3")
        out = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                out[item["Key"]] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        return out

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def pushed_tags() -> set[str]:
    """Local tags of images pushed to the tests' registry (127.0.0.1:5000)."""
    import docker

    client = docker.from_env()
    try:
        return {t for image in client.images.list() for t in image.tags if t.startswith("127.0.0.1:5000/")}
    finally:
        client.close()


def remove_tags(tags: set[str]) -> None:
    import docker

    client = docker.from_env()
    try:
        for tag in tags:
            try:
                client.images.remove(tag)  # untags; the image stays while another tag names it
            except docker.errors.APIError:
                pass
    finally:
        client.close()


def moto_executable() -> str:
    found = Path(sys.executable).with_name("moto_server")
    return str(found) if found.exists() else (shutil.which("moto_server") or "moto_server")


def start_moto(folder: Path) -> MotoServer:
    port = free_port()
    log = folder / "moto.log"
    env = {**os.environ, "MOTO_DOCKER_NETWORK_MODE": "host"}
    process = subprocess.Popen([moto_executable(), "-H", "127.0.0.1", "-p", str(port)], env=env,
                               stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = MotoServer(process, port, log)
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"moto_server ended: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError("moto_server did not listen within 30 s")


CLI = [sys.executable, "-c", "import sys; from repropack.cli import main; sys.exit(main())"]
QUEUE, BUCKET = "repropack-quickstart", "repropack-quickstart"


def cloud_profile(queue: str = QUEUE, bucket: str = f"s3://{BUCKET}/tests", extra: str = "") -> str:
    return (f'[profiles.cloud]\nbackend = "aws-batch"\nqueue = "{queue}"\nbucket = "{bucket}"\n'
            f'registry = "127.0.0.1:5000"\ncost = {{ vcpu-hour = 0.0404, gb-hour = 0.00444 }}\n{extra}')


def write_project(root: Path, manifest: str, files: dict[str, str]) -> Path:
    import textwrap

    root.mkdir(parents=True, exist_ok=True)
    (root / "repropack.toml").write_text(textwrap.dedent(manifest).lstrip(), encoding="utf-8")
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


def run_cli(root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 600,
            check: bool = False) -> subprocess.CompletedProcess:
    done = subprocess.run([*CLI, *args, "-C", str(root)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        raise AssertionError(f"repropack {' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def journal(root: Path) -> list[dict]:
    import json

    path = root / ".repropack" / "journal.jsonl"
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()] if path.exists() else []


def done_outputs(root: Path) -> dict[str, dict[str, str]]:
    """instance id -> {output: sha256} of the last run's finished instances."""
    records = journal(root)
    run = [r for r in records if r["t"] == "run"][-1]["run"]
    return {r["id"]: r["outputs"] for r in records if r["t"] == "done" and r["run"] == run}


def batch_job_ids(root: Path) -> list[str]:
    records = journal(root)
    run = [r for r in records if r["t"] == "run"][-1]["run"]
    return [r["job"] for r in records if r["t"] == "start" and r["run"] == run and r["backend"] == "aws-batch"]
