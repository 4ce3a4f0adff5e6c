"""A CycloneDX SBOM (JSON, spec 1.6) of one environment, from its lock files (cyclonedx-python-lib).

Each conda package is a component with its ``pkg:conda`` purl (channel, subdir, build) and its
sha256 and md5; each PyPI wheel with its ``pkg:pypi`` purl, the wheel's URL and sha256; the base
image with a ``pkg:docker`` / ``pkg:oci`` purl and its digest. The lock files read are the ones the
run recorded: a file whose sha256 differs from the recorded one (relocked since) is not read, and
the SBOM says so in a property instead of listing packages that did not run.
Nothing in it depends on the run (its serial number is derived from :func:`sbom_key`, it carries no
timestamp): the same environment gives the same bytes, so a run reuses the SBOM an earlier run made
(``.repropack/cache/sbom/``) instead of importing cyclonedx-python-lib again.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from repropack.provenance.model import BaseImageFact, EnvironmentFact, RunFacts

SPEC = "1.6"
_NAMESPACE = uuid.UUID("5b0f1f9e-6a56-4f0c-9a57-1f2d7c2e0a11")  # repropack's SBOM serial numbers


def lock_packages(root: Path, env: EnvironmentFact) -> tuple[list[dict[str, Any]], list[str]]:
    """(packages, problems) of an environment's recorded lock files; a package is a plain dict:
    manager (conda | pypi), name, version, url, sha256, md5, build, subdir, channel, platform."""
    packages: list[dict[str, Any]] = []
    problems: list[str] = []
    for lock in env.lock_files:
        path = Path(root) / lock.path
        try:
            data = path.read_bytes()
        except OSError as exc:
            problems.append(f"{lock.path}: cannot be read ({exc.strerror or exc})")
            continue
        if lock.sha256 and hashlib.sha256(data).hexdigest() != lock.sha256:
            problems.append(f"{lock.path}: changed since the run (sha256 differs from the recorded {lock.sha256[:12]}...)")
            continue
        text = data.decode("utf-8")
        packages += _conda_lock(text) if lock.path.endswith((".yml", ".yaml")) else _pylock(text, path.name)
    seen, unique = set(), []
    for pkg in packages:
        key = (pkg["manager"], pkg["name"], pkg["version"], pkg.get("url"))
        if key not in seen:
            seen.add(key)
            unique.append(pkg)
    return unique, problems


def _conda_lock(text: str) -> list[dict[str, Any]]:
    import yaml

    data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    out = []
    for entry in data.get("package") or []:
        url = str(entry.get("url") or "")
        hashes = entry.get("hash") or {}
        if entry.get("manager") == "conda":
            channel, subdir, filename = url.rsplit("/", 2) if url.count("/") >= 2 else ("", "", url)
            out.append({"manager": "conda", "name": entry["name"], "version": str(entry["version"]),
                        "build": str(entry.get("build") or _build_of(filename)), "subdir": subdir, "channel": channel,
                        "platform": entry.get("platform"), "url": url, "filename": filename,
                        "sha256": hashes.get("sha256"), "md5": hashes.get("md5")})
        elif entry.get("manager") == "pip":
            out.append({"manager": "pypi", "name": entry["name"], "version": str(entry["version"]), "url": url,
                        "platform": entry.get("platform"), "sha256": hashes.get("sha256"), "md5": hashes.get("md5")})
    return out


def _build_of(filename: str) -> str:
    """The build string of a conda file name (name-version-build.conda | .tar.bz2)."""
    stem = filename.removesuffix(".conda").removesuffix(".tar.bz2")
    return stem.rsplit("-", 1)[-1] if stem.count("-") >= 2 else ""


def _pylock(text: str, filename: str) -> list[dict[str, Any]]:
    import tomllib

    platform = filename.removeprefix("pylock.").removesuffix(".toml") if filename != "pylock.toml" else None
    out = []
    for pkg in tomllib.loads(text).get("packages", []):
        for wheel in pkg.get("wheels") or [{}]:
            out.append({"manager": "pypi", "name": pkg["name"], "version": str(pkg.get("version") or ""),
                        "url": wheel.get("url"), "platform": platform,
                        "sha256": (wheel.get("hashes") or {}).get("sha256"), "size": wheel.get("size")})
    return out


def build_sbom(facts: RunFacts, env: EnvironmentFact, root: Path | None = None) -> tuple[str, int]:
    """(the SBOM as CycloneDX JSON text, number of packages) of one environment of a run."""
    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6

    packages, problems = lock_packages(Path(root or facts.root), env)
    env_component = Component(name=f"{facts.project}/{env.name}", type=ComponentType.PLATFORM,
                              version=env.lock_sha256 or "unlocked", bom_ref=f"environment:{env.name}",
                              description=f"repropack environment {env.name} of {facts.project}")
    components = [_package(p) for p in packages]
    base = _base_image(facts.base_image) if facts.base_image is not None else None
    image = _env_image(env)
    props = [Property(name="repropack:lock_sha256", value=env.lock_sha256 or "none"),
             *(Property(name="repropack:lock_file", value=f"{lf.path} sha256:{lf.sha256}") for lf in env.lock_files),
             *(Property(name="repropack:problem", value=text) for text in problems)]
    bom = Bom(
        serial_number=uuid.uuid5(_NAMESPACE, sbom_key(facts, env)),
        metadata=BomMetaData(component=env_component, properties=props),
        components=[c for c in (*components, base, image) if c is not None],
    )
    _tool(bom, facts.repropack_version)
    bom.register_dependency(env_component, [c for c in bom.components])
    data = json.loads(JsonV1Dot6(bom).output_as_string())
    data["metadata"].pop("timestamp", None)  # the library stamps "now"; the SBOM describes the environment, not the hour
    return json.dumps(data, indent=1, sort_keys=True) + "\n", len(components)


def sbom_key(facts: RunFacts, env: EnvironmentFact) -> str:
    """What an environment's SBOM is made from, as one digest (the same key, the same bytes)."""
    base = facts.base_image
    parts = {"v": 1, "repropack": facts.repropack_version, "project": facts.project, "env": env.name,
             "lock": env.lock_sha256, "files": [[f.path, f.sha256] for f in env.lock_files],
             "image": [env.image_name, env.image_id, env.image_digest],
             "base": [base.reference, base.digest] if base else None}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _tool(bom: Any, version: str) -> None:
    from cyclonedx.model.component import Component, ComponentType

    bom.metadata.tools.components.add(Component(name="repropack", version=version, type=ComponentType.APPLICATION))


def _package(pkg: dict[str, Any]) -> Any:
    from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property, XsUri
    from cyclonedx.model.component import Component, ComponentType
    from packageurl import PackageURL

    if pkg["manager"] == "conda":
        qualifiers = {"build": pkg["build"], "channel": pkg["channel"], "subdir": pkg["subdir"],
                      "type": "conda" if pkg["filename"].endswith(".conda") else "tar.bz2"}
        purl = PackageURL(type="conda", name=pkg["name"], version=pkg["version"],
                          qualifiers={k: v for k, v in qualifiers.items() if v})
    else:
        purl = PackageURL(type="pypi", name=_pypi_name(pkg["name"]), version=pkg["version"],
                          qualifiers={"file_name": pkg["url"].rsplit("/", 1)[-1].split("#", 1)[0]} if pkg.get("url") else None)
    hashes = [HashType(alg=HashAlgorithm.SHA_256, content=pkg["sha256"])] if pkg.get("sha256") else []
    if pkg.get("md5"):
        hashes.append(HashType(alg=HashAlgorithm.MD5, content=pkg["md5"]))
    refs = [ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=XsUri(pkg["url"]))] if pkg.get("url") else []
    props = [Property(name="repropack:platform", value=str(pkg["platform"]))] if pkg.get("platform") else []
    return Component(name=pkg["name"], version=pkg["version"], type=ComponentType.LIBRARY, purl=purl, hashes=hashes,
                     external_references=refs, properties=props, bom_ref=purl.to_string())


def _pypi_name(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def _base_image(base: BaseImageFact) -> Any:
    if not base.reference:
        return None
    return _container(base.reference, base.digest, "base-image", "the base image, as locked")


def _env_image(env: EnvironmentFact) -> Any:
    if not (env.image_id or env.image_digest):
        return None
    name = env.image_name or f"environment-{env.name}"
    return _container(name, env.image_digest or env.image_id, f"image:{env.name}",
                      f"the image built for this environment (image ID {env.image_id})")


def _container(reference: str, digest: str | None, bom_ref: str, description: str) -> Any:
    from cyclonedx.model import HashAlgorithm, HashType
    from cyclonedx.model.component import Component, ComponentType
    from packageurl import PackageURL

    repo, tag = _split_reference(reference)
    purl = PackageURL(type="docker", name=repo.rsplit("/", 1)[-1], namespace=repo.rsplit("/", 1)[0] if "/" in repo else None,
                      version=digest or tag, qualifiers={"tag": tag} if tag and digest else None)
    hashes = [HashType(alg=HashAlgorithm.SHA_256, content=digest.split(":", 1)[1])] if digest and digest.startswith("sha256:") else []
    return Component(name=repo, version=tag or (digest or "unpinned"), type=ComponentType.CONTAINER, purl=purl,
                     hashes=hashes, bom_ref=bom_ref, description=description)


def _split_reference(reference: str) -> tuple[str, str | None]:
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return name.rsplit(":", 1)[0], name.rsplit(":", 1)[1]
    return name, None


def validate_sbom(text: str) -> str | None:
    """None when ``text`` is valid CycloneDX 1.6 JSON (the library's strict validator), else the error."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    return None if error is None else str(error)


def environments_of(facts: RunFacts) -> Iterable[EnvironmentFact]:
    """The locked environments (steps without one ran with the host's tools: nothing to list)."""
    return (facts.environments[name] for name in sorted(facts.environments) if facts.environments[name].lock_sha256)
