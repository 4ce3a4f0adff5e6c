"""What an aws-batch profile says: queue, bucket, registry, region, endpoint, job definition, prices.

Read once per profile from the manifest's profile table (``Profile.options``); nothing here talks to
AWS. Region, endpoint and credentials left out come from boto3's own chain (``AWS_REGION``,
``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, the shared files, an instance role), so any Batch- and
S3-compatible endpoint works.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from repropack.errors import RunError

OPTIONS = ("queue", "job-definition", "region", "endpoint", "bucket", "registry", "cost")
REQUIRED = ("queue", "bucket")
COST_KEYS = ("vcpu-hour", "gb-hour", "instance-hour", "instance-type", "currency")


@dataclass(frozen=True)
class Prices:
    """A profile's price table: per vCPU-hour and GB-hour of what a job reserves, or per instance-hour."""

    vcpu_hour: float = 0.0
    gb_hour: float = 0.0
    instance_hour: float = 0.0
    instance_type: str | None = None
    currency: str = "USD"

    def estimate(self, *, wall: float | None, cpus: int, memory: int | None) -> float | None:
        """Estimated cost of one attempt from its measured wall time and the resources it reserved."""
        if wall is None or not (self.vcpu_hour or self.gb_hour or self.instance_hour):
            return None
        hours = wall / 3600.0
        gib = (memory or 0) / (1 << 30)
        return round(hours * (self.instance_hour + cpus * self.vcpu_hour + gib * self.gb_hour), 8)

    def to_record(self) -> dict[str, Any]:
        return {"vcpu-hour": self.vcpu_hour, "gb-hour": self.gb_hour, "instance-hour": self.instance_hour,
                "instance-type": self.instance_type, "currency": self.currency}


@dataclass(frozen=True)
class BatchSettings:
    profile: str
    queue: str
    bucket: str
    prefix: str  # no leading or trailing slash; "" for the bucket's root
    region: str | None = None
    endpoint: str | None = None
    registry: str | None = None
    job_definition: str | None = None
    prices: Prices = field(default_factory=Prices)

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def parse_bucket(value: str, profile: str) -> tuple[str, str]:
    if not value.startswith("s3://") or len(value) <= 5:
        raise RunError(f"profile {profile!r}: bucket = {value!r} is not an s3://bucket/prefix address")
    bucket, _, prefix = value[5:].partition("/")
    return bucket, prefix.strip("/")


def parse_prices(value: Any, profile: str) -> Prices:
    if value is None:
        return Prices()
    if not isinstance(value, Mapping):
        raise RunError(f"profile {profile!r}: cost must be a table such as {{ vcpu-hour = 0.04, gb-hour = 0.004 }}")
    unknown = sorted(set(value) - set(COST_KEYS))
    if unknown:
        raise RunError(f"profile {profile!r}: cost.{unknown[0]} is not known (keys: {', '.join(COST_KEYS)})")
    numbers = {}
    for name in ("vcpu-hour", "gb-hour", "instance-hour"):
        number = value.get(name, 0.0)
        if isinstance(number, bool) or not isinstance(number, (int, float)) or number < 0:
            raise RunError(f"profile {profile!r}: cost.{name} = {number!r} is not a price (a number >= 0)")
        numbers[name] = float(number)
    return Prices(numbers["vcpu-hour"], numbers["gb-hour"], numbers["instance-hour"],
                  value.get("instance-type"), str(value.get("currency", "USD")))


def settings(profile: Any) -> BatchSettings:
    options = profile.options
    for name in REQUIRED:
        if not options.get(name):
            raise RunError(f"profile {profile.name!r}: backend aws-batch needs `{name}`",
                           hint='e.g. queue = "my-queue", bucket = "s3://my-bucket/repropack"')
    bucket, prefix = parse_bucket(str(options["bucket"]), profile.name)
    return BatchSettings(profile=profile.name, queue=str(options["queue"]), bucket=bucket, prefix=prefix,
                         region=options.get("region"), endpoint=options.get("endpoint"),
                         registry=options.get("registry"), job_definition=options.get("job-definition"),
                         prices=parse_prices(options.get("cost"), profile.name))
