"""The container engine the build talks to, behind a small interface.

Like repo2docker's ContainerEngine, the build needs only a handful of
operations from an engine: read an image out (the pinned base), load an
archive in, tag, and look an image up. :class:`DockerEngine` implements them
with the docker SDK; tests can pass any object with the same methods.
Connection problems become :class:`EngineUnavailable` with the endpoint named,
so a dead ``DOCKER_HOST`` is one clear line, not a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from repropack import docker_api
from repropack.errors import BuildError, EngineUnavailable


class ContainerEngine(Protocol):
    name: str

    def check(self) -> None:
        """Raise EngineUnavailable unless the engine answers."""

    def image_id(self, ref: str) -> str | None:
        """The ``sha256:`` ID of a local image, or None when it is not there."""

    def save(self, ref: str) -> Iterator[bytes]:
        """A docker-save tar stream of one image."""

    def pull(self, ref: str) -> None:
        """Pull an image by reference (the base, by digest)."""

    def load(self, archive: Path) -> str:
        """Load a docker-save archive; returns the loaded image ID."""

    def tag(self, image_id: str, ref: str) -> None:
        """Point ``ref`` at ``image_id``."""


class DockerEngine:
    """The Docker daemon at ``DOCKER_HOST`` (or the default socket), through the docker SDK."""

    name = "docker"

    def __init__(self, *, timeout: int = 600):
        self._timeout = timeout
        self._client: Any = None

    @property
    def endpoint(self) -> str:
        return docker_api.endpoint()

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = docker_api.connect(self._timeout)
        return self._client

    def check(self) -> None:
        self.client  # noqa: B018 - connecting is the check

    def _call(self, what: str, fn, *args, **kwargs):
        import docker.errors

        try:
            return fn(*args, **kwargs)
        except docker.errors.ImageNotFound:
            raise
        except docker.errors.APIError as exc:
            raise BuildError(f"docker {what} failed: {exc.explanation or exc}") from exc
        except docker_api.engine_errors() as exc:
            raise EngineUnavailable("docker", f"lost the daemon at {self.endpoint} during {what}: {exc}") from exc

    def image_id(self, ref: str) -> str | None:
        import docker.errors

        try:
            return self._call("inspect", self.client.images.get, ref).id
        except docker.errors.ImageNotFound:
            return None

    def save(self, ref: str) -> Iterator[bytes]:
        image = self._call("inspect", self.client.images.get, ref)
        return self._call("save", image.save, chunk_size=1 << 20)

    def pull(self, ref: str) -> None:
        self._call("pull", self.client.images.pull, ref)

    def load(self, archive: Path) -> str:
        with open(archive, "rb") as fh:
            images = self._call("load", self.client.images.load, fh)
        if not images:
            raise BuildError(f"docker loaded no image from {archive}")
        return images[0].id

    def tag(self, image_id: str, ref: str) -> None:
        repository, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
        image = self._call("inspect", self.client.images.get, image_id)
        if not self._call("tag", image.tag, repository, tag):
            raise BuildError(f"docker could not tag {image_id} as {ref}")

    def build(self, context: Path, reference: str) -> str:
        """``docker build`` of ``context/Containerfile`` (the --containerfile path); returns the image ID."""
        stream = self._call("build", self.client.api.build, path=str(context), dockerfile="Containerfile",
                            tag=reference, rm=True, forcerm=True, decode=True, labels={"io.repropack.build": "containerfile"})
        image_id, tail = None, []
        for chunk in stream:
            if "error" in chunk:
                raise BuildError(f"docker build failed: {chunk['error'].strip()}")
            if chunk.get("stream", "").strip():
                tail = (tail + [chunk["stream"].strip()])[-5:]
            image_id = (chunk.get("aux") or {}).get("ID", image_id)
        if image_id is None:
            raise BuildError("docker build reported no image: " + " | ".join(tail))
        return image_id

    def run(self, image: str, command: list[str], **kwargs: Any) -> bytes:
        """Run a command in a throwaway container (used by tests and `repropack build --check`)."""
        return self._call("run", self.client.containers.run, image, command, remove=True, **kwargs)
