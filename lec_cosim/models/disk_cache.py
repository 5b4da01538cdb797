"""A folder of computed things kept between runs (the compiled grid, parsed profile tables), by content hash.

The folder: ``$LEC_COSIM_CACHE``, else ``$XDG_CACHE_HOME/lec-cosim``, else ``~/.cache/lec-cosim`` (where SimBench's
grids are kept too, :func:`lec_cosim.models.feeder_source.simbench_cache_dir`); ``LEC_COSIM_NO_CACHE=1`` keeps
nothing here (every run computes everything); the :data:`KEPT_PER_KIND` most recently used entries of each kind are
kept. An entry is written whole or not at all
(a temporary file renamed: runs side by side may write the same one); one that cannot be read is computed again
and replaced; a folder that cannot be written only costs the computation. Entries are pickles: the folder must be
the user's own, as the code is.
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
from pathlib import Path

LOG = logging.getLogger(__name__)


def cache_dir() -> Path:
    explicit = os.environ.get("LEC_COSIM_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lec-cosim"


def enabled() -> bool:
    return os.environ.get("LEC_COSIM_NO_CACHE", "") in ("", "0")


_WARNED: set[str] = set()


def _warn_once(message: str, *args) -> None:
    """A problem with the cache said once per process, not at every read (it only costs the computation)."""
    if message not in _WARNED:
        _WARNED.add(message)
        LOG.warning(message, *args)


def entry(kind: str, key: str) -> Path:
    return cache_dir() / kind / f"{key}.pickle"


KEPT_PER_KIND = 32
"""Entries kept of each kind, the most recently used: every change of the code or the data is a new entry (a
compiled grid ~3.4 MB), and a developer's folder would otherwise only grow."""


def load(kind: str, key: str):
    """The entry's bytes, or None (none, unreadable, or the cache off). A read entry counts as used now."""
    if not enabled():
        return None
    path = entry(kind, key)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        _warn_once("cache entry %s unreadable (%s): computing it", path, exc)
        return None
    try:
        os.utime(path)  # the most recently used are the ones kept (_prune)
    except OSError:
        pass
    return blob


def store(kind: str, key: str, value) -> None:
    """Pickle ``value`` into the entry (whole, or not at all)."""
    if not enabled():
        return
    path = entry(kind, key)
    try:
        blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - a value that does not pickle is not kept; the caller has it
        _warn_once("cache entry %s not kept: %s: %s", path, type(exc).__name__, exc)
        return
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".tmp", delete=False) as handle:
            tmp = handle.name
            handle.write(blob)
        os.replace(tmp, path)
        _prune(path.parent)
    except OSError as exc:
        if tmp is not None:  # a full disk: no half-written entries left to fill it further
            Path(tmp).unlink(missing_ok=True)
        LOG.info("cache entry %s not written (%s): the next run computes it again", path, exc)


def _prune(folder: Path, keep: int | None = None) -> None:
    """Remove all but the ``keep`` (:data:`KEPT_PER_KIND`) most recently used entries of a kind (another process
    may remove them too)."""
    keep = KEPT_PER_KIND if keep is None else keep
    entries = []
    for path in folder.glob("*.pickle"):
        try:
            entries.append((path.stat().st_mtime, path))
        except OSError:
            continue
    for _, path in sorted(entries, reverse=True)[keep:]:
        path.unlink(missing_ok=True)


def model_sources() -> list[Path]:
    """The model modules' source files: part of the key of what they compute (a change of the code is a new entry)."""
    return sorted(Path(__file__).resolve().parent.glob("*.py"))


def content_key(text: str, files) -> str:
    """An entry's name: the hash of ``text`` (what is asked, as text) and of the content of each of ``files``, in
    order. Raises OSError if a file cannot be read."""
    import hashlib

    digest = hashlib.sha256(text.encode())
    for path in files:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:32]


def file_result(kind: str, path: Path, request, compute, code: Path | list[Path]):
    """``compute()``, the result of reading the file ``path`` (a table, an object that pickles), kept between runs
    by the file's content, the ``request`` (its repr) and the source of ``code`` (the modules that compute it).
    A result that fails to compute raises as ``compute`` does and is not kept."""
    return result(kind, repr(request), [path, *(code if isinstance(code, list) else [code])], compute)


def result(kind: str, request: str, files: list[Path], compute):
    """``compute()`` (an object that pickles), kept between runs by ``request`` (what is asked, as text) and the
    content of ``files`` (what it reads, and the source of the modules that compute it). A result that fails to
    compute raises as ``compute`` does and is not kept; a file that cannot be read leaves it to ``compute``."""
    try:
        key = content_key(request, files)
    except OSError:
        return compute()  # the reader says what is wrong with the file
    blob = load(kind, key)
    if blob is not None:
        try:
            return pickle.loads(blob)
        except Exception:  # noqa: BLE001 - an unreadable entry is computed again and replaced
            _warn_once("cache entry %s unreadable: computing it", entry(kind, key))
    result = compute()
    store(kind, key, result)
    return result
