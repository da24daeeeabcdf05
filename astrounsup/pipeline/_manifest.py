"""The run manifest of a pipeline: which steps finished, from which inputs and settings.

A re-run reuses a step when its key (a hash of its input files' contents, its settings
and the package version) is the one recorded and its outputs are still the files it
wrote; it redoes every other step, and the steps after a redone one see new inputs.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

from astrounsup import __version__
from astrounsup._atomic import atomic_path

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "astrounsup.run_manifest"


def file_hash(path, *, chunk=1 << 22):
    """SHA-256 of a file's bytes, or of a folder's files (relative names and contents,
    in sorted order)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            digest.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
    return digest.hexdigest()


def _jsonable(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


class RunManifest:
    """``out/manifest.json``: one entry per finished step (key, outputs and their hashes,
    time, and what the step reports), written atomically after each step."""

    def __init__(self, out, *, fresh=False):

        self.out = Path(out)
        self.path = self.out / MANIFEST
        self.version = __version__
        self.steps = {}
        self.data = None  # what the run searched (see check_data)
        self._recorded_data = None
        self._existed = self.path.exists()
        if self.path.exists() and not fresh:
            try:
                data = json.loads(self.path.read_text())
                if data.get("format") != MANIFEST_FORMAT:
                    raise ValueError("not a run manifest")
                self.steps = dict(data["steps"])
                self._recorded_data = data.get("data")
            except (ValueError, KeyError, TypeError) as err:
                msg = (
                    f"{self.path}: unreadable run manifest ({err}); run with --fresh "
                    "(fresh=True) to start over"
                )
                raise ValueError(msg) from None

    def check_data(self, identity, *, overwrite=False, inputs=()):
        """Refuse a run folder that holds another run's outputs of other data (or files of
        something else) unless ``overwrite``, which starts it over; record ``identity``
        (a dict with the data's ``sha256``) as this run's. Files of ``inputs`` inside the
        folder (a store ingested there, its rejects) are the run's own.

        Raises
        ------
        FileExistsError
            Naming the folder, the data it holds and the option that replaces it.
        """
        other = (self._recorded_data is not None
                 and self._recorded_data.get("sha256") != identity.get("sha256"))  # fmt: skip
        own = {
            Path(p).resolve().stem
            for p in inputs
            if Path(p).resolve().parent == self.out.resolve()
        }
        theirs = [
            p
            for p in (self.out.iterdir() if self.out.is_dir() else ())
            if not p.name.startswith(".") and not any(p.name.startswith(o) for o in own)
        ]
        foreign = not self._existed and bool(theirs)
        if (other or foreign) and not overwrite:
            held = (f"a run on other data ({self._recorded_data.get('path', '?')})" if other
                    else "files of something else")  # fmt: skip
            msg = (
                f"{self.out}: holds {held}; pass --overwrite (overwrite=True) to replace it, or "
                "give another output folder"
            )
            raise FileExistsError(msg)
        if other or foreign:
            self.steps = {}  # replaced: nothing of it is reused
        self.data = identity

    def key(self, **parts):
        """The hash of a step's inputs and settings (and the package version)."""
        text = json.dumps(_jsonable(parts | {"version": self.version}), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def reusable(self, step, key):
        """The entry of ``step`` when it finished with ``key`` and its outputs are the
        files it wrote; else None."""
        entry = self.steps.get(step)
        if not entry or entry.get("key") != key:
            return None
        for out in entry["outputs"].values():
            path = self.out / out["path"]
            if not path.exists() or file_hash(path) != out["sha256"]:
                return None
        return entry

    def output(self, step, name):
        """The path of output ``name`` of a recorded step."""
        return self.out / self.steps[step]["outputs"][name]["path"]

    def record(self, step, key, outputs, **info):
        """Record ``step`` as finished with ``key``, its ``outputs`` (name to path in the
        run folder) and ``info``; write the manifest."""
        self.steps[step] = {
            "key": key,
            "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "outputs": {
                name: {"path": str(Path(p).relative_to(self.out)), "sha256": file_hash(p)}
                for name, p in outputs.items()
            },
            **_jsonable(info),
        }
        self.write()

    def forget(self, step):
        """Drop ``step`` (it is being redone)."""
        if self.steps.pop(step, None) is not None:
            self.write()

    def write(self):
        data = {"format": MANIFEST_FORMAT, "version": self.version, "steps": self.steps}
        if self.data is not None:
            data["data"] = self.data
        self.out.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
