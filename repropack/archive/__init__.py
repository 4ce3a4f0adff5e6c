"""The publication archive: one file holding a workflow, its locks, packages, images, inputs and
the digests of its published outputs (``repropack pack``), checked without running
(``repropack verify ARCHIVE``), extracted safely (``repropack unpack``) and rerun offline with a
file-by-file verdict (``repropack rerun``).

Layout and format: :mod:`.format`. Writing: :mod:`.writer` (deterministic tar, streaming zstd).
Reading: :mod:`.reader` (every member hashed while streamed, checked against the index) and
:mod:`.safety` (which members may be extracted at all). Signing: :mod:`.sign` (ssh-keygen -Y).
"""
