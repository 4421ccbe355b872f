"""Finding dataset files on disk and downloading them with SHA-256 verification.

Lookup order for a dataset (``locate``): the user's ``data_dir`` (then nothing else),
``$TRAINWISE_DATA/<dataset>``, system directories (Debian packages), then the download
cache ``cache_dir()/<dataset>``. Downloads go to a temporary file next to the
destination and are renamed into place only after the checksum matched, so the
destination never holds a partial or unverified file.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import DataError

_CHUNK = 1 << 20


def one_line(x: object) -> str:
    """``str(x)`` with all whitespace runs (newlines included) collapsed to single spaces."""
    return " ".join(str(x).split())


def cache_dir() -> Path:
    """``$TRAINWISE_CACHE``, else ``$XDG_CACHE_HOME/trainwise``, else ``~/.cache/trainwise``."""
    if os.environ.get("TRAINWISE_CACHE"):
        return Path(os.environ["TRAINWISE_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "trainwise"
    return Path.home() / ".cache" / "trainwise"


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def download_file(url: str, dest: Path, sha256: str, timeout: float = 30) -> None:
    """Download ``url`` to ``dest`` if and only if its SHA-256 equals ``sha256``."""
    dest = Path(dest)
    where = dest.parent
    try:
        where.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=where, prefix=f".{dest.name}.", suffix=".part")
    except OSError as e:
        raise DataError(
            f"cannot write to {where} ({one_line(e.strerror or e)}); set $TRAINWISE_CACHE to a "
            f"writable directory, or place {dest.name} in a data directory yourself"
        ) from None
    try:
        h = hashlib.sha256()
        try:
            req = urllib.request.Request(url, headers={"User-Agent": "trainwise"})
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:
                for chunk in iter(lambda: resp.read(_CHUNK), b""):
                    h.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
            reason = getattr(e, "reason", None) or e
            raise DataError(
                f"could not download {url}: {one_line(reason)}; check the network or the mirror URL, "
                f"or download {dest.name} yourself and place it in {where}"
            ) from None
        got = h.hexdigest()
        if got != sha256.lower():
            raise DataError(
                f"checksum mismatch for {url}: expected {sha256.lower()}, got {got}; the download is "
                f"corrupt or the mirror changed — retry, or place the verified file in {where}"
            )
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def search_dirs(dataset: str, data_dir: str | os.PathLike | None, system_dirs: list[str]) -> list[Path]:
    """The directories ``locate`` looks in, in order (only ``data_dir`` when it is given)."""
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        if not d.is_dir():
            raise DataError(
                f"data_dir {d} does not exist or is not a directory; fix dataset.data_dir "
                f"or remove it to use the default locations"
            )
        return [d]
    dirs = []
    if os.environ.get("TRAINWISE_DATA"):
        dirs.append(Path(os.environ["TRAINWISE_DATA"]).expanduser() / dataset)
    dirs += [Path(s) for s in system_dirs]
    dirs.append(cache_dir() / dataset)
    return dirs


def locate(
    dataset: str,
    filenames: list[str],
    data_dir: str | os.PathLike | None,
    system_dirs: list[str],
) -> Path | None:
    """The first lookup directory holding all ``filenames``, or None.

    A given ``data_dir`` must exist and hold all files; otherwise a ``DataError`` says what is missing.
    """
    dirs = search_dirs(dataset, data_dir, system_dirs)
    for d in dirs:
        if all((d / name).is_file() for name in filenames):
            return d
    if data_dir is not None:
        missing = [name for name in filenames if not (dirs[0] / name).is_file()]
        raise DataError(
            f"data_dir {dirs[0]} lacks {', '.join(missing)} for {dataset}; put the files there "
            f"or fix dataset.data_dir"
        )
    return None
