"""``repropack build --containerfile``: a Containerfile rendered from a template, for users who need own steps.

The templates (``templates/Containerfile``, ``templates/apptainer.def``) use
``string.Template`` placeholders (``$base``, ``${workdir}``). A project may
replace a template with its own (``Containerfile.in`` / ``apptainer.def.in``
next to ``repropack.toml``) or add lines through a snippet
(``Containerfile.snippet`` / ``apptainer.snippet``), inserted where
``$snippet`` stands. The build context holds only the layer tars of the
reproducible build (environments and declared workflow files), added with
``ADD x.tar /``, so the secrets and ignore rules are the same. Such a build is
made by Docker's builder and is therefore not bit-for-bit reproducible; the
record says so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import string
import time
from pathlib import Path
from typing import Any

from repropack.build.builder import STORE, BuildOptions, Plan, Report, prepare_build, source_state
from repropack.build.record import write_record
from repropack.errors import BuildError, UsageError

TEMPLATES = ("Containerfile", "apptainer.def")


def template_dir() -> Path:
    """``templates/`` in a checkout, ``repropack/_templates`` in an installed wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "_templates", here.parent.parent / "templates"):
        if (candidate / "Containerfile").is_file():
            return candidate
    raise BuildError("repropack's templates are missing from this installation")


def load_template(project_root: Path, name: str) -> tuple[Path, str]:
    own = project_root / f"{name}.in"
    path = own if own.is_file() else template_dir() / name
    return path, path.read_text(encoding="utf-8")


def render(path: Path, text: str, values: dict[str, str]) -> str:
    """Substitute ``values``; a bad or unknown placeholder is an error naming file and line."""
    try:
        return string.Template(text).substitute(values)
    except ValueError as exc:
        match = re.search(r"line (\d+), col (\d+)", str(exc))
        where = f"{path}:{match[1]}:{match[2]}" if match else str(path)
        raise BuildError(f"{where}: invalid placeholder (write $$ for a literal $)") from exc
    except KeyError as exc:
        name = exc.args[0]
        line = next((n for n, l in enumerate(text.splitlines(), 1) if re.search(rf"\$\{{?{re.escape(name)}\b", l)), None)
        known = ", ".join(sorted(values))
        raise BuildError(f"{path}:{line}: unknown placeholder ${name} (known: {known})") from exc


def _snippet(project_root: Path, name: str) -> str:
    path = project_root / name
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def render_containerfile(plan: Plan, manifest) -> str:
    env_layers = plan.layers[:-1]
    values = {
        "project": manifest.project.name,
        "base": plan.base.pinned,
        "env_layers": "\n".join(f"ADD env-{i}.tar /" for i, _ in enumerate(env_layers)),
        "env": " ".join(f"{k}={json.dumps(v)}" for k, v in _env_items(plan)),
        "workdir": manifest.image.workdir,
        "labels": "LABEL " + " \\\n      ".join(f"{k}={json.dumps(v)}" for k, v in sorted(plan.labels.items())),
        "snippet": _snippet(plan.root, "Containerfile.snippet"),
    }
    path, text = load_template(plan.root, "Containerfile")
    return render(path, text, values)


def _env_items(plan: Plan) -> list[tuple[str, str]]:
    config = json.loads(plan.config)
    return [item.partition("=")[::2] for item in config["config"].get("Env") or []]


def render_apptainer_def(plan: Plan, manifest) -> str:
    values = {
        "project": manifest.project.name,
        "image": plan.reference,
        "workdir": manifest.image.workdir,
        "labels": "\n".join(f"    {k} {v}" for k, v in sorted(plan.labels.items())),
        "snippet": _snippet(plan.root, "apptainer.snippet"),
    }
    path, text = load_template(plan.root, "apptainer.def")
    return render(path, text, values)


def build_with_containerfile(project_root: Path, options: BuildOptions, *, engine=None,
                             report: Report = lambda _: None) -> dict[str, Any]:
    if options.push:
        raise UsageError("--push cannot be combined with --containerfile", hint="push the reproducible build instead")
    started = time.monotonic()
    manifest, engine, plan = prepare_build(project_root, options, engine, report)
    context = _write_context(plan, render_containerfile(plan, manifest))
    report("docker build of the rendered Containerfile")
    image_id = engine.build(context, plan.reference)
    record: dict[str, Any] = {
        "image": {"id": image_id, "reference": plan.reference, "labels": plan.labels, "reproducible": False,
                  "containerfile": str(context / "Containerfile"), "layers": [], "size": 0,
                  "base": {"reference": plan.base.reference, "digest": plan.base.digest, "layers": []}},
        "docker": {"id": image_id, "reference": plan.reference, "loaded": True},
        "pushed": None, "sif": None, "warnings": plan.warnings, "source": source_state(plan.root),
    }
    if options.apptainer:
        record["sif"] = _build_sif_from_def(plan, manifest, context, report)
    record["durations"] = {"total": round(time.monotonic() - started, 3)}
    record["path"] = str(write_record(plan.root, record))
    return record


def _write_context(plan: Plan, containerfile: str) -> Path:
    context = plan.root / STORE / "context"
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    for index, layer in enumerate(plan.layers[:-1]):
        _link(layer.path, context / f"env-{index}.tar")
    _link(plan.layers[-1].path, context / "workflow.tar")
    (context / "Containerfile").write_text(containerfile)
    return context


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _build_sif_from_def(plan: Plan, manifest, context: Path, report: Report) -> dict[str, Any]:
    from repropack.build import apptainer as sifmod
    from repropack.build.layers import sha256_file
    from repropack.build.pipeline import sif_path

    definition = context / "apptainer.def"
    definition.write_text(render_apptainer_def(plan, manifest))
    path = sif_path(plan)
    path.parent.mkdir(parents=True, exist_ok=True)
    report("apptainer build from the rendered definition")
    sifmod.build_from_definition(definition, path)
    return {"path": str(path), "sha256": sha256_file(path), "content_digest": sifmod.content_digest(path),
            "size": path.stat().st_size, "definition": str(definition)}
