"""A run as a Provenance Run Crate (Workflow Run RO-Crate 0.5 family, RO-Crate 1.1), as JSON-LD.

Written directly rather than through ro-crate-py's object model, which costs about 1 s of imports and
0.15 ms per entity at the end of every run (13 s for 10,000 instances); the tests read the result back
with ro-crate-py and validate it with roc-validator.

The crate's root is the project folder: data entities (the manifest, lock files, inputs, outputs,
SBOMs) are named by their project-relative paths, so ``ro-crate-metadata.json`` placed at the
project root (as ``repropack pack`` does) describes files that are really there. Its shape:

- the workflow: ``repropack.toml`` (File, SoftwareSourceCode, ComputationalWorkflow, HowTo), its steps
  as tools (``#tool-STEP``, SoftwareApplication, in ``hasPart``) and ``HowToStep``s (``step``);
- the run: a ``CreateAction`` with the manifest as instrument, inputs and parameters as ``object``,
  outputs as ``result``; an ``OrganizeAction`` of repropack itself with one ``ControlAction`` per
  instance, each pointing at the instance's ``CreateAction`` (command, start, end, status, resource
  use; a cached instance points at the run that made its outputs);
- environments as SoftwareApplications with their lock files (sha256), SBOM and images.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from repropack.redact import Redactor
from repropack.provenance.model import CACHED, FAILED, INTERRUPTED, NOT_RUN, OK, FileFact, InstanceFact, RunFacts

RO_CRATE_VERSION = "1.1"
RO_CRATE = f"https://w3id.org/ro/crate/{RO_CRATE_VERSION}"
METADATA = "ro-crate-metadata.json"
WFRUN_CONTEXT = "https://w3id.org/ro/terms/workflow-run/context"
WFRUN = "https://w3id.org/ro/terms/workflow-run#"
PROFILES = {
    "https://w3id.org/ro/wfrun/process/0.5": "Process Run Crate",
    "https://w3id.org/ro/wfrun/workflow/0.5": "Workflow Run Crate",
    "https://w3id.org/ro/wfrun/provenance/0.5": "Provenance Run Crate",
}
STATUS = {OK: "CompletedActionStatus", CACHED: "CompletedActionStatus", FAILED: "FailedActionStatus",
          INTERRUPTED: "FailedActionStatus", NOT_RUN: "PotentialActionStatus"}
RUN_STATUS = {"ok": "CompletedActionStatus", "running": "ActiveActionStatus"}
MANIFEST, LOCK = "repropack.toml", "repropack.lock"


def ref(entity_id: str) -> dict[str, str]:
    return {"@id": entity_id}


def file_id(path: str) -> str:
    return quote(path, safe="/")


def frag(kind: str, name: str) -> str:
    return f"#{kind}-{quote(name, safe='')}"


def iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return dt.datetime.fromtimestamp(stamp, tz=dt.timezone.utc).isoformat(timespec="milliseconds")


class CrateBuilder:
    """Builds the crate of one run; :meth:`build` returns the ``ro-crate-metadata.json`` data."""

    def __init__(self, facts: RunFacts, sboms: dict[str, str] | None = None, redactor: Redactor | None = None):
        self.facts = facts
        self.sboms = sboms or {}  # environment -> @id of its SBOM file
        # The source masks with the run's own secrets; facts made otherwise get at least the forms masked here.
        self.redact: Any = _Kept() if facts.redacted and redactor is None else (redactor or Redactor())
        self.graph: dict[str, dict[str, Any]] = {}  # @id -> entity, in insertion order
        self._files: dict[str, dict[str, Any]] = {}

    # -- entities --------------------------------------------------------------------
    def add(self, entity_id: str, props: dict[str, Any]) -> dict[str, Any]:
        entity = self.graph[entity_id] = {"@id": entity_id, **_clean(props)}
        return entity

    def file(self, fact: FileFact, **extra: Any) -> dict[str, str]:
        """The File (or Dataset, for a folder output) entity of a path, made once."""
        key = fact.path.rstrip("/")
        folder = fact.type in ("tree", "dir")
        entity = self._files.get(key)
        if entity is None:
            entity = self._files[key] = self.add(file_id(key) + ("/" if folder else ""),
                                                 {"@type": "Dataset" if folder else "File", "name": key})
        entity.update(_clean(extra))
        # A file met first as an input without a digest (format 1) gets it when met as an output.
        if fact.sha256:
            entity.setdefault("identifier" if folder else "sha256", fact.sha256)  # a folder: its tree digest
        if fact.size is not None:
            entity.setdefault("contentSize", str(fact.size))
        return ref(entity["@id"])

    # -- the crate -------------------------------------------------------------------
    def build(self) -> dict[str, Any]:
        f = self.facts
        self.add(METADATA, {"@type": "CreativeWork", "conformsTo": ref(RO_CRATE), "about": ref("./")})
        root = self.add("./", {"@type": "Dataset"})
        root["name"] = f"{f.project}: run {f.run_id}"
        root["description"] = (f"Provenance of repropack run {f.run_id} of {f.project} ({f.status}): "
                               f"{len(f.instances)} step instance(s).")
        root["datePublished"] = iso(f.ended or f.started)
        root["license"] = f.license or "not stated in the project's manifest"
        for uri, name in PROFILES.items():
            self.add(uri, {"@type": "CreativeWork", "name": name, "version": "0.5"})
        root["conformsTo"] = [ref(uri) for uri in PROFILES]
        self._engine_and_agent()
        workflow = self._workflow()
        root["mainEntity"] = ref(workflow)
        self._environments()
        run = self._run_action(workflow)
        root["mentions"] = [ref(run)]
        root["hasPart"] = [ref(e["@id"]) for e in self._files.values()]
        return {"@context": [RO_CRATE + "/context", WFRUN_CONTEXT], "@graph": list(self.graph.values())}

    def _engine_and_agent(self) -> None:
        f = self.facts
        self.add("#repropack", {"@type": "SoftwareApplication", "name": "repropack", "softwareVersion": f.repropack_version,
                                "version": f.repropack_version,
                                "description": "locks, builds, runs and publishes research workflows reproducibly"})
        self.add("#agent", {"@type": "Person", "name": f.user or "unknown"})
        self.add("#host", {"@type": "Place", "name": f.host or "unknown"})
        self.add("#repropack-manifest", {"@type": "ComputerLanguage", "name": "repropack manifest (repropack.toml)",
                                         "alternateName": "repropack", "version": f.repropack_version})

    def _workflow(self) -> str:
        f = self.facts
        steps = _steps_in_order(f.instances)
        tools, howto = [], []
        for position, step in enumerate(steps):
            tool, envs = frag("tool", step), sorted({i.environment for i in f.instances if i.step == step and i.environment})
            self.add(tool, {"@type": "SoftwareApplication", "name": step,
                            "softwareRequirements": [ref(frag("environment", e)) for e in envs] or None})
            how = frag("step", step)
            self.add(how, {"@type": "HowToStep", "name": step, "position": str(position), "workExample": ref(tool)})
            tools.append(ref(tool))
            howto.append(ref(how))
        manifest = f.manifest or FileFact(MANIFEST)
        params = self._params()
        return self.file(manifest, **{
            "@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow", "HowTo"],
            "name": f.project, "programmingLanguage": ref("#repropack-manifest"),
            "hasPart": tools, "step": howto, "input": params or None,
        })["@id"]

    def _params(self) -> list[dict[str, str]]:
        out = []
        for name, value in sorted(self.facts.params.items()):
            fp, pv = frag("param", name), frag("pv", name)
            self.add(fp, {"@type": "FormalParameter", "name": name, "additionalType": _param_type(value),
                          "valueRequired": "False", "workExample": ref(pv)})
            self.add(pv, {"@type": "PropertyValue", "name": name, "value": self.redact(_text(value)), "exampleOfWork": ref(fp)})
            out.append(ref(fp))
        return out

    def _environments(self) -> None:
        f = self.facts
        if f.lock is not None:
            self.file(f.lock, encodingFormat="application/toml", description="the project's lock index")
        for name, env in sorted(f.environments.items()):
            eid = frag("environment", name)
            locks = [self.file(lf, encodingFormat=_lock_format(lf.path), about=ref(eid)) for lf in env.lock_files]
            images = [self._image(img_id, props) for img_id, props in _images(name, env)]
            sbom = self.sboms.get(name)
            if sbom:
                self.file(FileFact(sbom), encodingFormat="application/vnd.cyclonedx+json", about=ref(eid),
                          description=f"CycloneDX SBOM of environment {name}")
            self.add(eid, {"@type": "SoftwareApplication", "name": f"environment {name}",
                           "description": None if env.lock_sha256 else "not locked: the host's own tools",
                           "identifier": env.lock_sha256, "subjectOf": [*locks, *([ref(file_id(sbom))] if sbom else [])]
                           or None, "image": None, "isBasedOn": images or None})
        if f.base_image is not None and f.base_image.reference:
            self._image("#image-base", {"name": f.base_image.reference, "identifier": f.base_image.digest,
                                        "description": "the base image, as locked",
                                        "additionalType": ref(WFRUN + "DockerImage")})

    def _image(self, image_id: str, props: dict[str, Any]) -> dict[str, str]:
        self.add(image_id, {"@type": "ContainerImage", **props})
        return ref(image_id)

    # -- actions ---------------------------------------------------------------------
    def _run_action(self, workflow: str) -> str:
        f = self.facts
        run = frag("run", f.run_id)
        controls, made, used = [], set(), []
        for inst in f.instances:
            action = self._instance_action(inst)
            control = frag("control", inst.id)
            self.add(control, {"@type": "ControlAction", "name": f"orchestrate {inst.id}",
                               "instrument": ref(frag("step", inst.step)), "object": ref(action),
                               "actionStatus": STATUS[inst.state]})
            controls.append(ref(control))
            made.update(o.path for o in self._outputs(inst))
        for inst in f.instances:
            used += [self.file(i)["@id"] for i in inst.inputs if i.path not in made]
        outputs = [self.file(o) for inst in f.instances for o in self._outputs(inst)]
        params = [ref(frag("pv", name)) for name in sorted(f.params)]
        status = RUN_STATUS.get(f.status, "FailedActionStatus")
        self.add(run, {"@type": "CreateAction", "name": f"repropack run {f.run_id}", "instrument": ref(workflow),
                       "agent": ref("#agent"), "location": ref("#host"), "startTime": iso(f.started),
                       "endTime": iso(f.ended), "actionStatus": status,
                       "error": None if status != "FailedActionStatus" else _run_error(f),
                       "object": [*map(ref, dict.fromkeys(used)), *params] or None,
                       "result": _unique(outputs) or None,
                       "description": " ".join(self.redact.argv(f.argv)) or None})
        self.add(frag("organize", f.run_id), {"@type": "OrganizeAction", "name": f"repropack orchestrating run {f.run_id}",
                                              "instrument": ref("#repropack"), "agent": ref("#agent"),
                                              "object": controls or None, "result": ref(run),
                                              "startTime": iso(f.started), "endTime": iso(f.ended),
                                              "actionStatus": status})
        return run

    def _outputs(self, inst: InstanceFact) -> list[FileFact]:
        """Each output this instance leaves current, its digest the one SHA256SUMS holds."""
        sums = self.facts.sums
        if inst.state == OK:
            return [FileFact(o.path, sums.get(o.path, o.sha256), o.size, o.type) for o in inst.produced]
        if inst.state == CACHED:
            made = {o.path: o for o in inst.cached_outputs}
            return [FileFact(p, sums[p], made[p].size if p in made else None, made[p].type if p in made else "file")
                    for p in inst.outputs if p in sums]
        return []

    def _instance_action(self, inst: InstanceFact) -> str:
        action = frag("instance", inst.id)
        last = inst.attempts[-1] if inst.attempts else None
        usage = self._usage(inst)
        props: dict[str, Any] = {
            "@type": "CreateAction", "name": inst.id, "instrument": ref(frag("tool", inst.step)),
            "agent": ref("#agent"), "description": self.redact(inst.command) or None,
            "startTime": iso(inst.start), "endTime": iso(inst.end), "actionStatus": STATUS[inst.state],
            "object": [self.file(i) for i in inst.inputs] or None,
            "result": [self.file(o) for o in self._outputs(inst)] or None,
            "resourceUsage": usage or None, "containerImage": self._action_image(inst),
            "error": self.redact(_instance_error(inst, last)) or None,
        }
        if inst.cached_from:
            earlier = frag("record", inst.cached_from)
            self.add(earlier, {"@type": "CreativeWork", "name": f"repropack run {inst.cached_from}",
                               "identifier": inst.cached_from,
                               "description": "the earlier run whose outputs this instance reused"})
            props["subjectOf"] = ref(earlier)
            props["description"] = f"{self.redact(inst.command)}\n(cached: made by run {inst.cached_from})".strip()
        self.add(action, props)
        return action

    def _usage(self, inst: InstanceFact) -> list[dict[str, str]]:
        if not inst.attempts:
            return []
        last = inst.attempts[-1]
        items = (("wallTime", "wall time", sum(a.wall or 0.0 for a in inst.attempts), "s"),
                 ("cpuTime", "CPU time (user + system)", sum(a.cpu or 0.0 for a in inst.attempts), "s"),
                 ("peakMemory", "peak memory (" + (last.peak_rss_source or "unknown") + ")",
                  max((a.peak_rss for a in inst.attempts if a.peak_rss is not None), default=None), "B"),
                 ("exitStatus", "exit status of the last attempt", last.exit_status, None),
                 ("attempts", "attempts", len(inst.attempts), None),
                 ("backend", "backend", _backend(inst, last), None),
                 ("jobId", "job id", last.job_id, None))
        out = []
        for key, label, value, unit in items:
            if value is None:
                continue
            pid = f"{frag('usage', inst.id)}-{key}"
            self.add(pid, {"@type": "PropertyValue", "propertyID": key, "name": label, "value": _text(value),
                           "unitText": unit})
            out.append(ref(pid))
        return out

    def _action_image(self, inst: InstanceFact) -> dict[str, str] | None:
        env = self.facts.environments.get(inst.environment or "")
        runtime = inst.runtime or (env.runtime if env else None)
        if env is None or runtime not in ("docker", "apptainer"):
            return None
        wanted = "sif" if runtime == "apptainer" else "docker"
        return ref(f"#image-{wanted}-{quote(env.name, safe='')}") if any(k == wanted for k, _ in _kinds(env)) else None


class _Kept:
    """The identity redactor, for facts whose source already masked everything."""

    def __call__(self, text: str | None) -> str:
        return text or ""

    def argv(self, argv: list[str]) -> list[str]:
        return list(argv)


def _kinds(env: Any) -> list[tuple[str, bool]]:
    return [(k, True) for k, present in (("docker", env.image_id or env.image_digest), ("sif", env.sif_digest)) if present]


def _images(name: str, env: Any) -> list[tuple[str, dict[str, Any]]]:
    out = []
    if env.image_id or env.image_digest:
        repo, _, tag = (env.image_name or "").rpartition(":") if ":" in (env.image_name or "") else (env.image_name, "", "")
        out.append((f"#image-docker-{quote(name, safe='')}", {
            "additionalType": ref(WFRUN + "DockerImage"), "name": repo or env.image_name or f"environment {name}",
            "tag": tag or None, "sha256": _hex(env.image_id), "identifier": env.image_digest or env.image_id,
            "description": f"image ID {env.image_id}" + (f", digest {env.image_digest}" if env.image_digest else "")}))
    if env.sif_digest:
        out.append((f"#image-sif-{quote(name, safe='')}", {
            "additionalType": ref(WFRUN + "SIFImage"), "name": f"SIF of environment {name}",
            "sha256": _hex(env.sif_digest), "identifier": env.sif_digest}))
    return out


def _hex(digest: str | None) -> str | None:
    return digest.split(":", 1)[1] if digest and ":" in digest else digest


def _backend(inst: InstanceFact, last: Any) -> str | None:
    parts = [p for p in (last.backend or inst.backend, inst.runtime) if p]
    return "/".join(parts) or None


def _instance_error(inst: InstanceFact, last: Any) -> str | None:
    if inst.state == FAILED and last is not None:
        exit_text = f" (exit status {last.exit_status})" if last.exit_status is not None else ""
        return f"{last.failure or 'failed'}{exit_text}: {last.message}".rstrip(": ")
    if inst.state == INTERRUPTED:
        return "interrupted: the run stopped before this instance finished"
    if inst.state == NOT_RUN:
        return None
    return None


def _run_error(f: RunFacts) -> str:
    failed, interrupted = f.count(FAILED), f.count(INTERRUPTED)
    return (f"run ended {f.status}: {failed} failed, {interrupted} interrupted, {f.count(NOT_RUN)} not run, "
            f"{f.count(OK)} finished, {f.count(CACHED)} cached")


def _steps_in_order(instances: Iterable[InstanceFact]) -> list[str]:
    return list(dict.fromkeys(i.step for i in instances))


def _lock_format(path: str) -> str:
    return "application/yaml" if path.endswith((".yml", ".yaml")) else "application/toml"


def _param_type(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Float"
    return "Text"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        import json

        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def _unique(refs: list[dict[str, str]]) -> list[dict[str, str]]:
    return [ref(i) for i in dict.fromkeys(r["@id"] for r in refs)]


def _clean(props: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if v is not None and v != []}


def build_crate(facts: RunFacts, sboms: dict[str, str] | None = None, redactor: Redactor | None = None) -> dict[str, Any]:
    """The ``ro-crate-metadata.json`` data of a run (``sboms``: environment -> SBOM path in the project)."""
    return CrateBuilder(facts, sboms, redactor).build()
