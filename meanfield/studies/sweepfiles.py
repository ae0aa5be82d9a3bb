"""Sweep files that cannot be corrupted: exclusive temporary files, one lock per folder, checked reuse.

- Every file is written to a temporary name that is new to this process (pid and a random
  token), created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` (never an existing file, never through a
  symbolic link), synced to disk and renamed into place with ``os.replace``: a reader sees the old
  file or the whole new one, never a part.
- :class:`FolderLock` holds ``fcntl.flock`` on ``<folder>/.sweep.lock`` for a whole run, so a
  second sweep into the same folder waits for the first (or gives up after ``timeout`` seconds
  with :class:`SweepBusyError`).
- A point file is reused only if it is a regular file that opens, its ``sweep_point`` attribute is
  the expected point and its arrays match the checksum written with them (:func:`reuse`);
  otherwise it is moved aside to ``<name>.bad`` (``<name>.1.bad``, ... never overwriting an earlier
  one) with a :class:`SweepFileWarning`, and the point is computed again.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import secrets
import stat
import time
import warnings
from pathlib import Path
from typing import Any

POINT_ATTR = "sweep_point"
DIGEST_ATTR = "sweep_digest"
LOCK_NAME = ".sweep.lock"
PART_SUFFIX = ".part"


class SweepFileWarning(UserWarning):
    """A sweep file that could not be used or written; the message says what happens instead."""


class SweepBusyError(RuntimeError):
    """Another sweep holds the folder's lock and did not release it within the timeout."""


def write_bytes(path: str | os.PathLike[str], data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` atomically through an exclusive temporary file in its folder."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}{PART_SUFFIX}")
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def write_dataset(path: str | os.PathLike[str], dataset: Any) -> None:
    """Write an ``xarray.Dataset`` as NetCDF-4 with :func:`write_bytes` (serialised in memory)."""
    write_bytes(path, dataset.to_netcdf(engine="netcdf4"))


def digest(dataset: Any) -> str:
    """SHA-256 of every variable's name, dims, shape and values (NaNs and text normalised)."""
    import numpy as np

    h = hashlib.sha256()
    for name in sorted(str(n) for n in dataset.variables):
        var = dataset.variables[name]
        values = np.asarray(var.values)
        h.update(f"{name}\0{tuple(var.dims)}\0{values.shape}\0".encode())
        if values.dtype.kind in "OUS":
            text = "\0".join(v.decode() if isinstance(v, bytes) else str(v) for v in values.ravel())
            h.update(b"text\0" + text.encode())
        else:
            if values.dtype.kind in "fc":
                values = np.where(np.isnan(values), np.nan, values).astype(values.dtype)
            h.update(values.dtype.str.encode() + b"\0" + np.ascontiguousarray(values).tobytes())
    return h.hexdigest()


def write_point(path: Path, dataset: Any, point_text: str) -> None:
    """Write a point's dataset with its ``sweep_point`` key and the checksum of its arrays.

    The checksum is taken from the dataset as it will be read back (one decoding round trip),
    so every later read can check it exactly.
    """
    import xarray as xr

    stamped = dataset.copy()
    stamped.attrs.pop(DIGEST_ATTR, None)
    stamped.attrs[POINT_ATTR] = point_text
    with xr.open_dataset(bytes(stamped.to_netcdf(engine="netcdf4"))) as back:
        stamped.attrs[DIGEST_ATTR] = digest(back.load())
    write_dataset(path, stamped)


def read_point(path: str | os.PathLike[str]) -> Any:
    """A point file's dataset, read fully into memory."""
    import xarray as xr

    with xr.open_dataset(path) as ds:
        return ds.load()


def inspect(path: Path, point_text: str) -> tuple[Any, str | None]:
    """``(dataset, None)`` for a valid point file, else ``(None, what is wrong)`` (read only)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None, "is missing"
    if stat.S_ISLNK(mode):
        return None, "is a symbolic link"
    try:
        ds = read_point(path)
    except Exception as err:  # any unreadable file: truncated, empty, foreign format
        return None, f"cannot be read ({type(err).__name__}: {str(err)[:200]})"
    found = ds.attrs.get(POINT_ATTR)
    if found != point_text:
        return None, f"holds another point ({POINT_ATTR} = {str(found)[:200]!r})"
    if DIGEST_ATTR not in ds.attrs:
        return None, "has no checksum of its arrays (written by an older version)"
    if ds.attrs[DIGEST_ATTR] != digest(ds):
        return None, "has arrays that do not match their checksum"
    return ds, None


def move_aside(path: Path) -> Path:
    """Rename ``path`` to the first free ``<name>.bad``, ``<name>.1.bad``, ... and return it."""
    for n in range(10_000):
        target = path.with_name(path.name + (".bad" if n == 0 else f".{n}.bad"))
        try:
            os.link(path, target, follow_symlinks=False)  # fails if target exists: no overwrite
        except FileExistsError:
            continue
        except OSError:  # no hard links on this file system: checked rename (we hold the lock)
            if os.path.lexists(target):
                continue
            os.rename(path, target)
            return target
        os.unlink(path)
        return target
    raise FileExistsError(f"{path}: 10000 earlier .bad files; remove them")


def reuse(path: Path, point_text: str) -> Any:
    """The dataset of a finished, valid point file; ``None`` if the point must be computed.

    An invalid file is moved aside with a :class:`SweepFileWarning`. An entry that is not a
    file (a directory, a socket) is left alone: the point is computed and its write will fail.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        return None
    ds, problem = inspect(path, point_text)
    if problem is None:
        return ds
    bad = move_aside(path)
    warnings.warn(f"sweep point file {path} {problem}: moved to {bad.name} and computed again",
                  SweepFileWarning, stacklevel=4)
    return None


def remove_stale_parts(folder: Path) -> None:
    """Delete leftover ``*.part`` files and links of killed runs (never what a link points to)."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.endswith(PART_SUFFIX) and (entry.is_symlink() or entry.is_file()):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


class FolderLock:
    """``with FolderLock(folder, timeout=...)``: exclusive use of a sweep folder by this run.

    ``timeout=None`` waits as long as needed, ``0`` refuses at once, ``t`` waits ``t`` seconds,
    then raises :class:`SweepBusyError` naming the folder and the process that holds it.
    """

    def __init__(self, folder: Path, *, timeout: float | None = None) -> None:
        self.folder, self.timeout, self._fd = Path(folder), timeout, -1

    @property
    def path(self) -> Path:
        return self.folder / LOCK_NAME

    def __enter__(self) -> FolderLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as err:
            why = "it is a symbolic link" if err.errno == errno.ELOOP else err.strerror
            raise SweepBusyError(f"cannot open the sweep lock {self.path}: {why}; remove it"
                                 ) from err
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise SweepBusyError(f"the sweep lock {self.path} is not a regular file; remove it")
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    logging.getLogger(__name__).warning(
                        "waiting for the sweep in %s (process %s holds %s)", self.folder, holder,
                        LOCK_NAME)
                    told = True
                if deadline is not None and time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    os.close(fd)
                    raise SweepBusyError(
                        f"the sweep folder {self.folder} is in use by another sweep (process "
                        f"{holder} holds {LOCK_NAME}); waited {self.timeout:g} s. Let it finish "
                        "(its points are reused), or pass lock_timeout=None to wait") from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
