"""A folder of the user's images (``dataset.name: image-folder``).

``path`` holds ``train/<class>/*`` and ``test/<class>/*``, or is one root of ``<class>/*`` folders
(or holds only ``train/<class>/*``) split by ``dataset.test_fraction`` (stratified by class, seeded
by ``split_seed``). Images are PNG, JPEG, BMP or WebP (Pillow); a class folder may hold subfolders;
hidden files and folders (a leading '.') are skipped, other files are errors, as are image files
outside a class folder. Classes are the sorted training folder names.

Every image is converted to ``channels`` (1: "L", 3: "RGB"; default 3 unless every image is
grayscale) and, with ``resize: [H, W]``, resized (bilinear); without it all images must have one
size. The decoded set (uint8 NCHW) is cached under ``cache_dir()/image-folder/<key>/`` as .npy
files plus ``meta.json`` (written last, atomically), keyed by the sorted relative file list with
sizes and modification times and the settings: a second load decodes nothing, and adding,
changing or removing a file decodes again. ``storage: mmap`` (or auto, large) maps the cached
.npy files instead of reading them.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io import atomic_write_bytes, atomic_write_text
from .arrays import make_data, stratified_split, use_mmap
from .base import TensorData
from .download import cache_dir, one_line

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
FORMAT = 1  # bump when the cached arrays would be decoded differently
PARTS = ("x_train", "y_train", "x_test", "y_test")

Listing = list[tuple[str, str, int, int]]  # (class, path relative to the root, size, mtime_ns)


def _hidden(p: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in p.relative_to(root).parts)


def _scan(split_dir: Path, root: Path, what: str) -> Listing:
    """Every image under ``split_dir/<class>/`` as (class, relative path, size, mtime_ns), sorted."""
    classes, out = [], []
    for entry in sorted(split_dir.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            classes.append(entry)
        elif entry.suffix.lower() in IMAGE_EXTS:
            raise DataError(f"image {entry.relative_to(root)} lies outside a class folder; move it into "
                            f"{what}<class>/ (each class's images in a folder named after the class)")
    if not classes:
        raise DataError(f"{split_dir} has no class folders; put each class's images in {what}<class>/ "
                        "(one folder per class)")
    for cls in classes:
        n = 0
        for p in sorted(cls.rglob("*")):
            if _hidden(p, cls) or not p.is_file():
                continue
            rel = p.relative_to(root).as_posix()
            if p.suffix.lower() not in IMAGE_EXTS:
                raise DataError(f"{rel} is not an image file (PNG, JPEG, BMP or WebP); remove it or move it out "
                                f"of {root}")
            st = p.stat()
            out.append((cls.name, rel, st.st_size, st.st_mtime_ns))
            n += 1
        if n == 0:
            raise DataError(f"class folder {cls.relative_to(root).as_posix()}/ holds no images; add images or "
                            "remove the folder")
    return out


def _layout(cfg, root: Path) -> dict[str, Listing]:
    train, test = root / "train", root / "test"
    if train.is_dir() and test.is_dir():
        if cfg.test_fraction is not None:
            raise DataError(f"{root} already has train/ and test/ folders; remove dataset.test_fraction")
        return {"train": _scan(train, root, "train/"), "test": _scan(test, root, "test/")}
    if cfg.test_fraction is None:
        raise DataError(f"{root} has no train/ and test/ folders; add train/<class>/ and test/<class>/, or set "
                        "dataset.test_fraction (e.g. 0.2) to hold out a test set from its class folders")
    if train.is_dir():  # train/ only: its classes are split
        return {"all": _scan(train, root, "train/")}
    return {"all": _scan(root, root, "")}


def _settings(cfg, listing: dict[str, Listing]) -> dict:
    settings = {"format": FORMAT, "resize": list(cfg.resize) if cfg.resize else None, "channels": cfg.channels}
    if "all" in listing:
        settings.update(test_fraction=cfg.test_fraction, split_seed=cfg.split_seed)
    return settings


def _key(settings: dict, listing: dict[str, Listing]) -> str:
    blob = json.dumps({"settings": settings, "files": listing}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


# ---------------------------------------------------------------- decoding


def _open(root: Path, rel: str):
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(root / rel)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{rel} cannot be read as an image ({one_line(e)}); replace or remove it") from None


def _decode(cfg, root: Path, files: list[str]) -> np.ndarray:
    """All ``files`` as one uint8 (N, C, H, W) array, after a header pass over every file (mode and
    size: the errors come before the slow part)."""
    from PIL import Image

    modes, first = [], None
    for rel in files:
        with _open(root, rel) as im:
            w, h = im.size
            modes.append(im.mode)
        if first is None:
            first = (rel, h, w)
        elif cfg.resize is None and (h, w) != first[1:]:
            raise DataError(f"images differ in size: {first[0]} is {first[1]}x{first[2]} and {rel} is {h}x{w} "
                            "(height x width); set dataset.resize: [H, W] or resize the files to one size")
    channels = cfg.channels or (1 if all(m in GRAY_MODES for m in modes) else 3)
    mode = "L" if channels == 1 else "RGB"
    h, w = tuple(cfg.resize) if cfg.resize else first[1:]
    x = np.empty((len(files), channels, h, w), dtype=np.uint8)
    for i, rel in enumerate(files):
        try:
            with _open(root, rel) as im:
                im = im.convert(mode)
                if cfg.resize is not None and im.size != (w, h):
                    im = im.resize((w, h), Image.BILINEAR)
                a = np.asarray(im, dtype=np.uint8)
        except DataError:
            raise
        except (OSError, ValueError, SyntaxError) as e:  # truncated or corrupt pixel data
            raise DataError(f"{rel} cannot be decoded ({one_line(e)}); replace or remove it") from None
        x[i] = a.reshape(h, w, channels).transpose(2, 0, 1)
    return x


def _labels(listing: Listing, classes: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[c] for c, *_ in listing], dtype=np.int64)


# ---------------------------------------------------------------- the cache


def _save(where: Path, key: str, root: Path, settings: dict, arrays: dict[str, np.ndarray],
          classes: list[str]) -> bool:
    try:
        for k, a in arrays.items():
            buf = io.BytesIO()
            np.save(buf, a, allow_pickle=False)
            atomic_write_bytes(where / f"{k}.npy", buf.getbuffer())
        meta = {"key": key, "root": str(root), "settings": settings, "classes": classes,
                "shapes": {k: list(a.shape) for k, a in arrays.items()}}
        atomic_write_text(where / "meta.json", json.dumps(meta))
        return True
    except OSError:  # an unwritable cache only costs the decoding next time
        return False


def _prune(base: Path, keep: Path, root: Path, settings: dict) -> None:
    """Remove the cached decodings of this folder with these settings but other (stale) files."""
    try:
        for d in base.iterdir():
            if d == keep or not (d / "meta.json").is_file():
                continue
            meta = json.loads((d / "meta.json").read_text())
            if meta.get("root") == str(root) and meta.get("settings") == settings:
                shutil.rmtree(d, ignore_errors=True)
    except (OSError, ValueError, AttributeError):
        pass


def _meta(where: Path, key: str) -> dict | None:
    try:
        meta = json.loads((where / "meta.json").read_text())
        return meta if isinstance(meta, dict) and meta.get("key") == key else None
    except (OSError, ValueError):
        return None


def _load(where: Path, meta: dict, mmap: bool) -> tuple[dict[str, np.ndarray], list[str]] | None:
    """The cached arrays and classes, or None if unreadable."""
    try:
        arrays = {}
        for k in PARTS:
            a = np.load(where / f"{k}.npy", mmap_mode="c" if mmap and k.startswith("x") else None,
                        allow_pickle=False)
            if list(a.shape) != meta["shapes"][k] or a.dtype != (np.uint8 if k[0] == "x" else np.int64):
                return None
            arrays[k] = a
        return arrays, list(meta["classes"])
    except (OSError, ValueError, KeyError, TypeError, EOFError):
        return None


def load_image_folder(cfg) -> TensorData:
    root = Path(cfg.path).expanduser()
    if not root.exists():
        raise DataError(f"image folder {root} does not exist; set dataset.path to a folder with train/<class>/ "
                        "and test/<class>/ (or class folders plus dataset.test_fraction)")
    if not root.is_dir():
        raise DataError(f"dataset.path {root} is a file, not a folder; image-folder needs a folder of class "
                        "folders")
    root = root.resolve()
    listing = _layout(cfg, root)
    settings = _settings(cfg, listing)
    key = _key(settings, listing)
    base = cache_dir() / "image-folder"
    where = base / key
    meta = _meta(where, key)
    if meta is not None:
        try:
            nbytes = sum(int(np.prod(meta["shapes"][k])) for k in ("x_train", "x_test"))
        except (KeyError, TypeError, ValueError):
            nbytes = 0
        cached = _load(where, meta, use_mmap(cfg.storage, nbytes))
        if cached is not None:
            arrays, classes = cached
            return make_data(cfg.name, arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
                             classes)
    if "all" in listing:
        classes = sorted({c for c, *_ in listing["all"]})
        x = _decode(cfg, root, [rel for _, rel, *_ in listing["all"]])
        y = _labels(listing["all"], classes)
        tr, te = stratified_split(y, cfg.test_fraction, cfg.split_seed, str(root))
        arrays = {"x_train": x[tr], "y_train": y[tr], "x_test": x[te], "y_test": y[te]}
    else:
        classes = sorted({c for c, *_ in listing["train"]})
        unknown = sorted({c for c, *_ in listing["test"]} - set(classes))
        if unknown:
            raise DataError(f"test class folder test/{unknown[0]}/ has no training folder train/{unknown[0]}/ "
                            f"(training classes: {', '.join(classes[:20])}); add its training images or remove it")
        x = _decode(cfg, root, [rel for _, rel, *_ in listing["train"] + listing["test"]])
        n = len(listing["train"])
        arrays = {"x_train": x[:n], "y_train": _labels(listing["train"], classes),
                  "x_test": x[n:], "y_test": _labels(listing["test"], classes)}
    if _save(where, key, root, settings, arrays, classes):
        _prune(base, where, root, settings)
        if use_mmap(cfg.storage, arrays["x_train"].nbytes + arrays["x_test"].nbytes):
            cached = _load(where, _meta(where, key) or {}, True)
            if cached is not None:
                arrays = cached[0]
    return make_data(cfg.name, arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], classes)
