"""The step's image where Batch can pull it: pushed to the profile's registry, named by digest.

``registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/repropack"`` (ECR) or
``"127.0.0.1:5000"`` (the tests' local registry): the local image is tagged
``<registry>/<name>:<short image id>`` and pushed through the one Docker adapter
(:mod:`repropack.docker_api`); the job definition then names ``<registry>/<name>@sha256:...``, so
what runs is exactly what was built. Without ``registry`` the reference is used as it is (it must
then be something the compute environment can pull).
"""

from __future__ import annotations

from typing import Any

from repropack import docker_api
from repropack.errors import BackendError

NAME = "aws-batch"
TIMEOUT = 600


def _repository(registry: str, reference: str) -> str:
    base = reference.split("@", 1)[0]
    last = base.rsplit("/", 1)[-1]
    name = last.rsplit(":", 1)[0] if ":" in last else last
    name = "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in name.lower()) or "image"
    return f"{registry.rstrip('/')}/{name}"


def pushed(reference: str, registry: str | None) -> str:
    """The reference by digest a job definition should name for local image ``reference``."""
    if not registry:
        return reference
    client = docker_api.connect(TIMEOUT)
    try:
        return _push(client, reference, registry)
    finally:
        client.close()


def _push(client: Any, reference: str, registry: str) -> str:
    import docker.errors

    repository = _repository(registry, reference)
    try:
        image = client.images.get(reference)
    except docker.errors.ImageNotFound:
        if reference.startswith(registry.rstrip("/") + "/") and "@sha256:" in reference:
            return reference  # already in the registry, by digest
        raise BackendError(NAME, f"the image {reference} is neither in the local Docker engine nor in {registry}",
                           hint="run `repropack build`, or name an image that exists") from None
    except docker_api.engine_errors() as exc:
        raise BackendError(NAME, f"cannot inspect the image {reference}: {exc}") from None
    for digest in image.attrs.get("RepoDigests") or []:
        if digest.startswith(repository + "@"):
            return digest  # pushed before: the registry has these bytes
    tag = image.id.split(":", 1)[-1][:16]
    try:
        image.tag(repository, tag)
        for line in client.api.push(repository, tag, stream=True, decode=True):
            if line.get("error"):
                raise BackendError(NAME, f"cannot push {repository}:{tag}: {line['error']}")
        image.reload()
    except docker_api.engine_errors() as exc:
        raise BackendError(NAME, f"cannot push {repository}:{tag}: {exc}") from None
    for digest in image.attrs.get("RepoDigests") or []:
        if digest.startswith(repository + "@"):
            return digest
    raise BackendError(NAME, f"pushed {repository}:{tag} but the engine reports no digest for it")
