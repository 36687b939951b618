"""The answer key: the reference's output for every case, and every catalogued mutant's
output (so a wrong answer can be matched to the mistake that produces it).

Computed in the trusted process, once per (lesson, model weights, lesson source), and stored
as one safetensors file (tensors + a JSON tree, never pickle): shipped with the package for
the embedded model's public cases, otherwise cached under the user cache directory. With a
warm key, ``check`` never boots a model in the grading process.

A cached key is only as good as its provenance: folders are made 0700 and files 0600, and
beside each key file a manifest records the SHA-256 of every entry as the trusted process
wrote it. An entry whose hash does not match (or that the manifest does not list) is not
believed: it is dropped, recomputed, and reported in ``notices``.

Every key file also records where its values were computed (``Provenance``: mechgrade, torch and
TransformerLens versions, the weights' fingerprint). Where a file's record differs from this
machine (or a file has none), ``notices`` says so in one line; where the reference is installed,
each of that file's entries is recomputed here before its first use, compared with the stored
value within the function's own tolerance (a stored value outside it is named in a notice), and
replaced by the fresh one, which the user cache then keeps under this machine's provenance.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from mechgrade import __version__, lessons
from mechgrade.errors import ReferenceUnavailable
from mechgrade.engine.codec import encode, from_bytes, to_bytes, decode
from mechgrade.engine.compare import compare
from mechgrade.engine.mutants import load_catalogue, mutant_module
from mechgrade.models.loader import weights_fingerprint
from mechgrade.models.spec import resolve
from mechgrade.spec import Case, Exercise, Function, Lesson, has_reference, lesson_dir


FROZEN_SOURCE = "SOURCE"


def cache_root() -> Path:
    base = os.environ.get("MECHGRADE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "mechgrade")
    return Path(base)


def key_label(filename: str) -> str:
    """'embedded', or 'model with weights <fingerprint>' (key files are named kind-weights-source)."""
    kind, weights, _ = filename.split("-", 2)
    return kind if kind == "embedded" else f"model with weights {weights}"


def source_fingerprint(lesson: str) -> str:
    """Everything that determines the key besides the weights: reference, builders, spec, mutants.
    A student bundle, which has no reference and no hidden cases, carries the fingerprint of the
    full lesson it was exported from (``keys/SOURCE``), so that its shipped keys are found."""
    frozen = lesson_dir(lesson) / "keys" / FROZEN_SOURCE
    if frozen.is_file():
        return frozen.read_text().strip()
    h = hashlib.sha256(__version__.encode())
    ref_dir = lessons.get(lesson).reference_dir()
    for path in sorted(ref_dir.glob("*.py")) + sorted(lesson_dir(lesson).glob("*.py")) + sorted(lesson_dir(lesson).glob("*.toml")):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:16]


def roundtrip(value: Any) -> Any:
    """What the grader would see had ``value`` crossed the process boundary."""
    tree, tensors = encode(value)
    return decode(tree, {k: v.clone() for k, v in tensors.items()})


def entry_hash(entry: Any) -> str:
    return hashlib.sha256(to_bytes(*encode(entry))).hexdigest()


def private_dir(path: Path) -> Path:
    """``path`` created (with its parents) and made 0700: answer keys live there."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (mode 0600) atomically, never through a link planted there."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class Provenance(BaseModel):
    """Where a key file's values were computed. Versions are compared without a local build
    label (torch ``2.13.0+cpu`` and ``2.13.0`` are one release)."""

    model_config = ConfigDict(frozen=True)

    mechgrade: str
    torch: str
    transformer_lens: str
    weights: str

    LABELS: ClassVar[dict[str, str]] = {"mechgrade": "mechgrade", "torch": "torch", "transformer_lens": "TransformerLens",
                                        "weights": "model weights"}

    @classmethod
    def here(cls, weights: str) -> "Provenance":
        """This machine's, for a model whose weights have fingerprint ``weights``."""
        from importlib.metadata import PackageNotFoundError, version

        import torch

        try:
            transformer_lens = version("transformer_lens")
        except PackageNotFoundError:
            transformer_lens = "unknown"
        return cls(mechgrade=__version__, torch=torch.__version__, transformer_lens=transformer_lens, weights=weights)

    @classmethod
    def parse(cls, recorded: dict | None) -> "Provenance | None":
        """A file's record, or None where it has none (written before provenance) or a broken one."""
        try:
            return None if recorded is None else cls.model_validate(recorded)
        except ValidationError:
            return None

    def shown(self, field: str) -> str:
        value = getattr(self, field)
        return value if field == "weights" else value.split("+", 1)[0]

    def differences(self, other: "Provenance") -> list[str]:
        return [f for f in Provenance.model_fields if self.shown(f) != other.shown(f)]


def provenance_notice(recorded: Provenance | None, here: Provenance, *, verified: bool) -> str:
    """The one line that says a key file was computed elsewhere, and what is done about it."""
    then = ("each entry is checked against the reference on this machine before it is used" if verified
            else "values are compared within each case's tolerance")
    if recorded is None:
        now = ", ".join(f"{Provenance.LABELS[f]} {here.shown(f)}" for f in Provenance.model_fields if f != "weights")
        return f"The answer key does not record where it was computed (here: {now}); {then}."
    fields = recorded.differences(here)
    was = " and ".join(f"{Provenance.LABELS[f]} {recorded.shown(f)}" for f in fields)
    now = ", ".join(f"{Provenance.LABELS[f]} {here.shown(f)}" for f in fields)
    return f"The answer key was computed with {was} (here: {now}); {then}."


class AnswerKey:
    """Expected outputs (and mutant outputs) per case, computed lazily and persisted."""

    def __init__(self, lesson: Lesson, model_spec: str):
        self.lesson = lesson
        self.model_spec = model_spec
        self.source = resolve(model_spec)
        weights = weights_fingerprint(self.source)
        self.id = f"{self.source.kind if self.source.kind == 'embedded' else 'model'}-{weights}-{source_fingerprint(lesson.id)}"
        self.provenance = Provenance.here(weights)
        self.entries: dict[str, Any] = {}
        self.unverified: set[str] = set()  # from a file computed elsewhere: recomputed here before first use
        self.stale: list[tuple[str, str]] = []  # (case, how its stored value differed) found by that check
        self._notices: list[str] = []
        self.dirty = False
        elsewhere: list[Provenance | None] = []  # the records of files not computed like here
        if self.shipped_path.exists():
            self._take(*from_bytes(self.shipped_path.read_bytes(), with_provenance=True), elsewhere)
        self._take(*self._load_cache(), elsewhere)
        if self.unverified or (elsewhere and not has_reference(lesson.id)):
            self._notices.insert(0, provenance_notice(elsewhere[0], self.provenance, verified=has_reference(lesson.id)))

    def _take(self, entries: dict[str, Any], recorded: dict | None, elsewhere: list) -> None:
        """Add one file's entries. A file computed like here overrides what came before; one
        computed elsewhere adds only what is missing or as unverified, and its entries are
        verified before use where the reference is here (a student bundle uses them as they are)."""
        if not entries:
            return
        provenance = Provenance.parse(recorded)
        if provenance is not None and not provenance.differences(self.provenance):
            self.entries.update(entries)
            self.unverified -= set(entries)
            return
        elsewhere.append(provenance)
        verifiable = has_reference(self.lesson.id)
        for number, entry in entries.items():
            if number not in self.entries or number in self.unverified:
                self.entries[number] = entry
                if verifiable:
                    self.unverified.add(number)

    @property
    def notices(self) -> list[str]:
        """What the user should know about this key: one line each."""
        notices = list(self._notices)
        if self.stale:
            cases = ", ".join(case for case, _ in self.stale)
            first = f" ({self.stale[0][1]})" if len(self.stale) == 1 else f" (first, {self.stale[0][0]}: {self.stale[0][1]})"
            notices.append(f"The answer key's stored value for {cases} was outside the tolerance of this machine's reference{first}; "
                           "the value computed here is used.")
        return notices

    def _load_cache(self) -> tuple[dict[str, Any], dict | None]:
        """The cached entries whose hashes match the manifest the trusted process wrote, and
        the file's provenance."""
        path = self.cache_path
        if not path.exists():
            return {}, None
        try:
            entries, provenance = from_bytes(path.read_bytes(), with_provenance=True)
            manifest = json.loads(self.manifest_path.read_text())
        except Exception:  # unreadable, truncated, forged beyond parsing, or from before manifests
            entries, manifest, provenance = {}, {}, None
            self._notices.append(f"The cached answer key {path} could not be checked (unreadable, or no manifest of "
                                 "hashes beside it); it was not believed, and is recomputed.")
            self.dirty = True
        good = {k: v for k, v in entries.items() if isinstance(manifest, dict) and manifest.get(k) == entry_hash(v)}
        if len(good) < len(entries):
            self._notices.append(f"{len(entries) - len(good)} entries of the cached answer key {path} were changed since "
                                 "mechgrade wrote them; they were not believed, and are recomputed.")
            self.dirty = True
        return good, provenance

    @property
    def manifest_path(self) -> Path:
        return self.cache_path.with_suffix(".sha256.json")

    @property
    def shipped_path(self) -> Path:
        return lesson_dir(self.lesson.id) / "keys" / f"{self.id}.safetensors"

    @property
    def cache_path(self) -> Path:
        return cache_root() / "keys" / self.lesson.id / f"{self.id}.safetensors"

    @cached_property
    def model(self):
        from mechgrade.models.loader import load_model

        return load_model(self.model_spec)

    def release_model(self) -> None:
        """Drop this process's model (and the loader's cache of it) and return the memory."""
        import ctypes
        import gc

        from mechgrade.models.loader import _load_cached

        self.__dict__.pop("model", None)
        _load_cached.cache_clear()
        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError:  # not glibc: the memory is freed, just maybe not returned at once
            pass

    def entry(self, exercise: Exercise, function: Function, case: Case) -> dict[str, Any]:
        """{"expected": value, "mutants": {name: value}} for one case (computed if missing,
        verified first if it came from a key computed elsewhere)."""
        if case.number not in self.entries:
            self.entries[case.number] = self._compute(exercise, function, case)
            self.dirty = True
        elif case.number in self.unverified:
            self._verify(exercise, function, case)
        return self.entries[case.number]

    def _verify(self, exercise: Exercise, function: Function, case: Case) -> None:
        """Recompute a case whose stored entry was computed elsewhere; note a stored value
        beyond the function's tolerance (the grading comparison, no tighter: CPUs differ)."""
        fresh = self._compute(exercise, function, case)
        verdict = compare(self.entries[case.number]["expected"], fresh["expected"], atol=function.atol, rtol=function.rtol,
                          path="the stored value")
        if not verdict.passed:
            self.stale.append((f"{exercise.id}.{function.name} [{case.label}]", verdict.message))
        self.entries[case.number] = fresh
        self.unverified.discard(case.number)
        self.dirty = True

    def _compute(self, exercise: Exercise, function: Function, case: Case) -> dict[str, Any]:

        if not has_reference(self.lesson.id):
            shipped = sorted(key_label(p.name) for p in self.shipped_path.parent.glob("*.safetensors"))
            raise ReferenceUnavailable(
                f"This student bundle has no answer key for {function.name} [{case.label}] on model '{self.model_spec}' "
                f"(its keys: {', '.join(shipped) or 'none'}); grade with --model embedded, or ask your instructor for a bundle with this model's key.")
        build = lessons.get(self.lesson.id).builders()
        reference = lessons.get(self.lesson.id).reference_module(exercise.id)
        # One set of inputs serves the reference and every mutant: none of them mutates its inputs.
        kwargs = build(self.model, function.builder, case.params)
        expected = roundtrip(getattr(reference, function.name)(**kwargs))
        mutants: dict[str, Any] = {}
        for mutant in load_catalogue(self.lesson.id).for_function(exercise.id, function.name):
            try:  # a mutant whose module does not even import (a removed API) is recognised by its error
                mutants[mutant.name] = roundtrip(getattr(mutant_module(self.lesson.id, mutant), function.name)(**kwargs))
            except Exception:  # a mutant that crashes on this case needs no value to be recognised
                continue
            finally:
                self.model.reset_hooks()
        return {"expected": expected, "mutants": mutants}

    def fill(self, cases) -> bool:
        """Compute the missing (and verify the unverified) entries among ``cases`` ((exercise,
        function, case) triples) and persist them; True if anything had to be computed."""
        missing = [(e, f, c) for e, f, c in cases if c.number not in self.entries or c.number in self.unverified]
        for exercise, function, case in missing:
            self.entry(exercise, function, case)
        if missing or self.dirty:
            self.persist()
        return bool(missing)

    def persist(self) -> None:
        """Save to the user cache if there is anything new; a read-only cache only costs the
        next run the recomputation."""
        if self.dirty:
            try:
                self.save()
            except OSError:
                pass

    def _blobs(self, only: set[str] | None = None) -> tuple[bytes, bytes]:
        """(the key file, its manifest of hashes) for the verified entries (those in ``only``)."""
        data = {k: v for k, v in self.entries.items() if (only is None or k in only) and k not in self.unverified}
        blob = to_bytes(*encode(data), provenance=self.provenance.model_dump())
        return blob, json.dumps({k: entry_hash(v) for k, v in data.items()}).encode()

    def cache_files(self) -> dict[str, bytes]:
        """{file name: bytes} of the key as a cache folder holds it, manifest included: an
        export's cache is then believed where it is unpacked, not recomputed."""
        blob, manifest = self._blobs()
        return {self.cache_path.name: blob, self.manifest_path.name: manifest}

    def save(self, path: Path | None = None, *, only: set[str] | None = None) -> Path:
        """Write the key: in the cache (the default) with its manifest of hashes, every folder
        0700 and file 0600; elsewhere (the package's shipped key, an export) as asked. Either
        way with this machine's provenance, so without any entry not yet verified here."""
        blob, manifest = self._blobs(only)
        if path is None or path == self.cache_path:
            path = self.cache_path
            for folder in (cache_root(), path.parent.parent, path.parent):
                private_dir(folder)
            write_private(path, blob)
            write_private(self.manifest_path, manifest)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(blob)
            tmp.replace(path)
        self.dirty = False
        return path


def build_shipped_key(lesson: Lesson) -> Path:
    """Precompute the embedded model's public cases into the package (run after any change)."""
    key = AnswerKey(lesson, "embedded")
    public = set()
    for exercise, function, case in lesson.iter_cases():
        key.entry(exercise, function, case)
        public.add(case.number)
    for old in key.shipped_path.parent.glob("*.safetensors"):
        old.unlink()
    return key.save(key.shipped_path, only=public)


if __name__ == "__main__":
    import sys

    from mechgrade.spec import load_lesson

    if len(sys.argv) != 2:
        sys.exit("usage: python -m mechgrade.engine.key LESSON")
    print(build_shipped_key(load_lesson(sys.argv[1])))
