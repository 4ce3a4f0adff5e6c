"""Run records, format 2: what one run leaves under ``.repropack/runs/<run-id>/``.

::

    run.json               the run: format, repropack version, argv (redacted), host, user, profile,
                           started, ended, status, manifest and lock digests, environments' image identity
    instances.jsonl        one line per instance the run planned: id, step, values, key and its parts
                           (input digests included), deps, the command with declared paths, environment,
                           image, profile, backend, requested resources, outputs, cached_from
    results/<writer>.jsonl one line per attempt, one file per writer ("local"; "slurm-<jobid>",
                           "batch-<jobid>"): times, CPU, peak memory, exit status, failure, output digests,
                           where its streams are, what re-renders its exact script
    streams/<writer>.log   the non-empty stdout/stderr of successful attempts, framed, appended
    failed/<inst-dir>/attempt-<n>/  script.sh, stdout, stderr, metrics.json of a failed attempt
    SHA256SUMS             ``sha256sum -c`` lines, paths relative to the project root, for every output
                           the run leaves current (made or cached)

:mod:`.format` holds the names, versions and record builders (what writers and readers share);
the JSON Schema of the records is ``docs/schema/records-v2.schema.json``.
"""

from repropack.run.records.format import FORMAT, NAMES

__all__ = ["FORMAT", "NAMES"]
