"""Run the RO-Crate validator (roc-validator) offline: the JSON-LD contexts it would fetch from
w3id.org (unreachable here and in CI) are answered locally at the ``requests`` adapter level and at
rdflib's URL opener; every other URL fails as the network would. The checks stay the validator's.

- ``https://w3id.org/ro/crate/1.1/context``: ro-crate-py's bundled RO-Crate context (1.3) with the four
  Bioschemas terms mapped as 1.1 maps them (the profiles' shapes use the 1.1 IRIs);
- ``https://w3id.org/ro/terms/workflow-run/context``: the Workflow Run terms (ResearchObject/ro-terms,
  ``workflow-run/context.json``): the 16 terms below, each ``https://w3id.org/ro/terms/workflow-run#TERM``.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any
from unittest import mock

WFRUN_TERMS = ("ParameterConnection", "ContainerImage", "DockerImage", "SIFImage", "connection", "sourceParameter",
               "targetParameter", "md5", "sha1", "sha256", "sha512", "environment", "registry", "tag",
               "containerImage", "resourceUsage")


# RO-Crate 1.1 maps the Bioschemas terms to older IRIs than the 1.3 context ro-crate-py bundles.
BIOSCHEMAS_1_1 = {"ComputationalWorkflow": "https://bioschemas.org/ComputationalWorkflow",
                  "FormalParameter": "https://bioschemas.org/FormalParameter",
                  "input": "https://bioschemas.org/ComputationalWorkflow#input",
                  "output": "https://bioschemas.org/ComputationalWorkflow#output"}


def _contexts() -> dict[str, bytes]:
    bundled = json.loads(resources.files("rocrate").joinpath("data", "ro-crate.jsonld").read_bytes())
    v11 = {**bundled, "@id": "https://w3id.org/ro/crate/1.1/context",
           "@context": {**bundled["@context"], **BIOSCHEMAS_1_1}}
    wfrun = json.dumps({"@context": {t: f"https://w3id.org/ro/terms/workflow-run#{t}" for t in WFRUN_TERMS}}).encode()
    out = {"https://w3id.org/ro/crate/1.1/context": json.dumps(v11).encode(),
           "https://w3id.org/ro/crate/1.3/context": json.dumps(bundled).encode()}
    out["https://w3id.org/ro/terms/workflow-run/context"] = wfrun
    return out


def _normal(url: str) -> str:
    url = str(url).split("#", 1)[0].rstrip("/")
    return url.replace("http://", "https://", 1)


@contextlib.contextmanager
def offline_contexts() -> Iterator[list[str]]:
    """Answer the known contexts locally; the list yields every other URL something asked for."""
    import requests
    from requests.adapters import HTTPAdapter

    known = _contexts()
    refused: list[str] = []

    def send(self, request, **kwargs):  # noqa: ARG001 - HTTPAdapter.send's signature
        body = known.get(_normal(request.url))
        if body is None:
            refused.append(request.url)
            raise requests.ConnectionError(f"offline test: {request.url} is not answered")
        response = requests.Response()
        response.status_code, response.url, response.request = 200, request.url, request
        response.headers["Content-Type"] = "application/ld+json"
        response._content = body if request.method != "HEAD" else b""
        return response

    def urlopen(req, *args, **kwargs):  # rdflib's own loader (urllib)
        url = getattr(req, "full_url", req)
        body = known.get(_normal(url))
        if body is None:
            refused.append(str(url))
            raise OSError(f"offline test: {url} is not answered")
        return _UrlResponse(body, str(url))

    with mock.patch.object(HTTPAdapter, "send", send), mock.patch("urllib.request.urlopen", urlopen):
        patches = [mock.patch(f"{mod}.urlopen", urlopen) for mod in _rdflib_openers()]
        for p in patches:
            p.start()
        try:
            yield refused
        finally:
            for p in patches:
                p.stop()


def _rdflib_openers() -> list[str]:
    import importlib

    found = []
    for name in ("rdflib.parser", "rdflib.plugins.shared.jsonld.util"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "urlopen"):
            found.append(name)
    return found


class _UrlResponse(io.BytesIO):
    def __init__(self, body: bytes, url: str):
        super().__init__(body)
        self.url = url
        self.headers = {"Content-Type": "application/ld+json"}
        self.status = 200

    def geturl(self) -> str:
        return self.url

    def info(self) -> dict[str, str]:
        return self.headers


def validate_crate(crate_root: Path, profile: str = "provenance-run-crate-0.5",
                   severity: str = "REQUIRED") -> tuple[bool, list[str]]:
    """(passed, one line per issue) of the crate whose ro-crate-metadata.json is in ``crate_root``."""
    from rocrate_validator import services

    settings: dict[str, Any] = {"rocrate_uri": str(Path(crate_root).resolve()), "profile_identifier": profile,
                                "requirement_severity": severity, "no_cache": True,
                                "skip_availability_check": True}
    with offline_contexts():
        result = services.validate(settings)
    issues = [f"{i.severity.name} {i.check.identifier if i.check else ''}: {i.message}" for i in result.get_issues()]
    return result.passed(), issues
