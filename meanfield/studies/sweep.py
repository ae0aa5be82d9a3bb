"""The sweep engine: independent points on ``dask.distributed``, each result written at once.

A sweep is a function ``fn(**point) -> xarray.Dataset`` and a list of points (dicts of plain
values: finite numbers, strings, booleans, lists/tables of them; checked before any point is
sent anywhere). :func:`run_points` submits every point to a Dask client and, as each one
finishes, writes its dataset to ``<directory>/point-<key>.nc`` (``key`` a hash of the point).
Running the same sweep again loads the finished points instead of recomputing them: a killed
sweep resumes and loses nothing. Without a directory nothing is written.

The files cannot be corrupted (:mod:`meanfield.studies.sweepfiles`): exclusive temporary files
renamed into place, one lock per folder held for the run (a second sweep into the same folder
waits, or gives up after ``lock_timeout`` seconds), and a point file is reused only if it opens,
holds this point and its arrays match their checksum; otherwise it is moved aside to ``*.bad``
and computed again. A point whose file cannot be written is reported at the end
(:attr:`SweepResult.unsaved` and one :class:`SweepFileWarning`); the others go on.

:func:`combine` (and :meth:`SweepResult.to_xarray`) stores a sweep as one dataset whose
dimensions are the varied parameters (:mod:`meanfield.studies.sweeplayout`).

Where the points run:

- ``client=`` an existing ``distributed.Client`` (e.g. connected to a cluster's scheduler);
- :func:`run_sweep` creates the client itself: ``scheduler="tcp://host:8786"`` connects to an
  existing scheduler, otherwise a ``LocalCluster`` with ``workers`` workers is started (and
  closed afterwards);
- ``client=None`` in :func:`run_points` runs the points one after the other in this process
  (small studies, and machines without the ``dist`` extra).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meanfield.errors import bad_type, bad_value, check_int
from meanfield.studies.sweepfiles import (
    POINT_ATTR,
    FolderLock,
    SweepBusyError,
    SweepFileWarning,
    inspect,
    read_point,
    remove_stale_parts,
    reuse,
    write_bytes,
    write_dataset,
    write_point,
)
from meanfield.studies.sweeplayout import combine, dimension_name, select

__all__ = [
    "MANIFEST",
    "POINT_ATTR",
    "SweepBusyError",
    "SweepError",
    "SweepFileWarning",
    "SweepResult",
    "canonical",
    "check_points",
    "combine",
    "dimension_name",
    "grid_points",
    "load_point",
    "load_sweep",
    "open_client",
    "point_key",
    "point_path",
    "run_points",
    "run_sweep",
    "select",
    "write_dataset",
]

MANIFEST = "sweep.json"
ALLOWED = "finite numbers, strings, booleans, None, or lists/tables of them"


def _plain(value: Any, name: str) -> Any:
    """A JSON-representable copy of a point value; ``name`` (the parameter) in every error."""
    import numpy as np

    if isinstance(value, (np.integer, np.floating, np.bool_)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        bad_value(name, value, f"a finite number (sweep values are {ALLOWED})")
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{name}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{name}.{k}") for k, v in value.items()}
    bad_type(name, value, ALLOWED)


def check_points(points: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The points as dicts, every name a string and every value allowed (before any dispatch)."""
    if isinstance(points, (str, bytes, Mapping)) or not isinstance(points, Iterable):
        bad_type("points", points, "a list of points (mappings from parameter names to values)")
    out = []
    for k, point in enumerate(points):
        if not isinstance(point, Mapping):
            bad_type(f"points[{k}]", point, "a mapping from parameter names to values")
        for name, value in point.items():
            if not isinstance(name, str) or (not name.isidentifier() and not all(
                    part.isidentifier() for part in name.split("."))):
                bad_value(f"points[{k}]", name, "parameter names that are identifiers "
                          "(dotted names such as model.sigma allowed)")
            _plain(value, name)
        out.append(dict(point))
    return out


def canonical(point: Mapping[str, Any]) -> str:
    """The point as sorted, compact JSON (the same point always gives the same text)."""
    if not isinstance(point, Mapping):
        bad_type("points", point, "mappings from parameter names to values")
    plain = {str(k): _plain(v, str(k)) for k, v in point.items()}
    return json.dumps(plain, sort_keys=True, separators=(",", ":"),
                      allow_nan=False)


def point_key(point: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> str:
    """A short stable name for a point: the first 16 hex digits of the SHA-256 of its JSON
    (and of the sweep's ``context``, the settings shared by all its points, when given)."""
    text = canonical(point) if not context else canonical(point) + canonical(context)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def point_path(directory: str | os.PathLike[str], point: Mapping[str, Any],
               context: Mapping[str, Any] | None = None) -> Path:
    return Path(directory) / f"point-{point_key(point, context)}.nc"


def grid_points(**values: Sequence[Any]) -> list[dict[str, Any]]:
    """The Cartesian product of parameter lists, in order (last name varies fastest)."""
    import itertools

    names = list(values)
    for name, vals in values.items():
        if isinstance(vals, (str, bytes)) or not isinstance(vals, Sequence) or len(vals) == 0:
            bad_value(name, vals, "a non-empty list of values to sweep")
        for v in vals:
            _plain(v, name)
    return [dict(zip(names, combo, strict=True)) for combo in
            itertools.product(*(values[n] for n in names))]


def load_point(path: str | os.PathLike[str]) -> Any:
    """A finished point's dataset, read fully into memory."""
    return read_point(path)


def _check_result(result: Any, point: Mapping[str, Any]) -> Any:
    import xarray as xr

    if not isinstance(result, xr.Dataset):
        bad_type("fn", result, f"an xarray.Dataset returned for the point {dict(point)}")
    return result


def _evaluate(fn: Callable[..., Any], point: Mapping[str, Any]) -> Any:
    return fn(**point)


@dataclass(frozen=True, eq=False)
class SweepResult:
    """The datasets of a sweep (aligned with ``points``) and how many were computed or reused.

    ``unsaved`` lists ``(point, reason)`` for computed points whose file could not be written
    (their datasets are here, but a re-run computes them again).
    """

    points: tuple[dict[str, Any], ...]
    datasets: tuple[Any, ...]
    computed: int
    reused: int
    directory: Path | None
    unsaved: tuple[tuple[dict[str, Any], str], ...] = ()

    def to_xarray(self) -> Any:
        """All points in one dataset whose dimensions are the varied parameters (:func:`combine`)."""
        return combine(self.points, self.datasets)


class SweepError(RuntimeError):
    """Some points failed; ``failures`` lists ``(point, reason)``, ``result`` the finished ones."""

    def __init__(self, message: str, failures: Sequence[tuple[dict[str, Any], str]],
                 result: SweepResult) -> None:
        super().__init__(message)
        self.failures, self.result = tuple(failures), result


def _listing(items: Sequence[tuple[dict[str, Any], str]]) -> str:
    text = "; ".join(f"{p}: {why}" for p, why in items[:5])
    return text + (f"; and {len(items) - 5} more" if len(items) > 5 else "")


def run_points(fn: Callable[..., Any], points: Iterable[Mapping[str, Any]], *,
               directory: str | os.PathLike[str] | None = None, client: Any = None,
               progress: bool = False, description: str = "sweep",
               context: Mapping[str, Any] | None = None,
               lock_timeout: float | None = None) -> SweepResult:
    """Evaluate ``fn(**point)`` (an ``xarray.Dataset``) for every point, on ``client`` if given.

    Every point is checked (:func:`check_points`) before any is computed. With ``directory``,
    the folder is locked for the run (``lock_timeout`` seconds of waiting for another sweep,
    ``None``: as long as needed), valid finished points found there are loaded instead of
    computed, and each new point is written as soon as its result arrives. ``context`` (plain
    values: the model JSON and the settings ``fn`` has bound) enters every point's file name, so
    a directory shared by studies with other models or settings never hands their results to
    this one. If some points fail, the others are still written and a :class:`SweepError` (a
    ``RuntimeError``) lists the failures (re-running retries only those).
    """
    if not callable(fn):
        bad_type("fn", fn, "a callable fn(**point) returning an xarray.Dataset")
    if lock_timeout is not None:
        from meanfield.errors import check_finite_number

        check_finite_number("lock_timeout", lock_timeout, nonnegative=True)
    pts = check_points(points)
    if context is not None:
        canonical(context)
    keys = [point_key(p, context) for p in pts]
    if len(set(keys)) != len(keys):
        bad_value("points", pts, "distinct points (each point is computed once)")
    if directory is None:
        return _run(fn, pts, None, client, progress, description, context)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    with FolderLock(folder, timeout=lock_timeout):
        remove_stale_parts(folder)
        _write_manifest(folder, pts, context)
        return _run(fn, pts, folder, client, progress, description, context)


def _run(fn: Callable[..., Any], pts: list[dict[str, Any]], folder: Path | None, client: Any,
         progress: bool, description: str, context: Mapping[str, Any] | None) -> SweepResult:
    results: list[Any] = [None] * len(pts)
    if folder is not None:
        for i, p in enumerate(pts):
            results[i] = reuse(point_path(folder, p, context), canonical(p))
    todo = [i for i, r in enumerate(results) if r is None]
    reused = len(pts) - len(todo)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(pts), initial=reused, desc=description, unit="point")
    failures: list[tuple[dict[str, Any], str]] = []
    unsaved: list[tuple[dict[str, Any], str]] = []

    def finish(i: int, result: Any) -> None:
        result = _check_result(result, pts[i])
        results[i] = result
        if bar is not None:
            bar.update(1)
        if folder is not None:
            path = point_path(folder, pts[i], context)
            try:
                write_point(path, result, canonical(pts[i]))
            except Exception as err:  # this point is not saved; the others go on
                unsaved.append((pts[i], f"writing {path} failed: {type(err).__name__}: {err}"))

    try:
        if client is None:
            for i in todo:
                try:
                    result = _evaluate(fn, pts[i])
                except Exception as err:  # recorded, the other points still run
                    failures.append((pts[i], f"{type(err).__name__}: {err}"))
                    continue
                finish(i, result)
        else:
            from distributed import as_completed

            # pure=False: every submission gets its own key, so concurrent sweeps never share
            futures = {client.submit(_evaluate, fn, pts[i], pure=False): i for i in todo}
            for future in as_completed(list(futures)):
                i = futures[future]
                try:
                    result = future.result()
                except Exception as err:  # recorded, the other points still run
                    failures.append((pts[i], f"{type(err).__name__}: {err}"))
                    continue
                finally:
                    future.release()
                finish(i, result)
    finally:
        if bar is not None:
            bar.close()
    done = SweepResult(points=tuple(pts), datasets=tuple(results), computed=len(todo),
                       reused=reused, directory=folder, unsaved=tuple(unsaved))
    note = (f" {len(unsaved)} computed points could not be written ({_listing(unsaved)}); their "
            "results are in memory only and a re-run computes them again.") if unsaved else ""
    if failures:
        raise SweepError(f"{len(failures)} of {len(pts)} sweep points failed "
                         f"({_listing(failures)}); the finished points are kept, re-run to retry "
                         f"the failed ones.{note}", failures + unsaved, done)
    if unsaved:
        warnings.warn(f"{len(unsaved)} of {len(pts)} sweep points in {folder}:{note}",
                      SweepFileWarning, stacklevel=3)
    return done


def _write_manifest(folder: Path, points: Sequence[Mapping[str, Any]],
                    context: Mapping[str, Any] | None = None) -> None:
    text = json.dumps({"points": [_plain(dict(p), "points") for p in points],  # keys in order
                       "context": json.loads(canonical(context)) if context else None}, indent=1)
    write_bytes(folder / MANIFEST, text.encode())


def load_sweep(directory: str | os.PathLike[str]) -> SweepResult:
    """The finished, valid points of a sweep directory (in the order of its manifest).

    Read only (no lock, nothing moved: a running sweep may be inspected); invalid point files
    are left out with one :class:`SweepFileWarning` (the next run moves them aside).
    """
    folder = Path(directory)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        bad_value("directory", str(folder), f"a sweep directory containing {MANIFEST}")
    try:
        recorded = json.loads(manifest.read_text())
        points, context = recorded["points"], recorded.get("context")
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{manifest}: not a sweep manifest ({err})") from err
    done, bad = [], []
    for p in points:
        path = point_path(folder, p, context)
        ds, problem = inspect(path, canonical(p))
        if ds is not None:
            done.append((p, ds))
        elif problem != "is missing":
            bad.append(f"{path.name} {problem}")
    if bad:
        warnings.warn(f"{len(bad)} point files of {folder} left out: {'; '.join(bad[:5])}",
                      SweepFileWarning, stacklevel=2)
    return SweepResult(points=tuple(p for p, _ in done), datasets=tuple(ds for _, ds in done),
                       computed=0, reused=len(done), directory=folder)


def open_client(*, workers: int | None = None, scheduler: str | None = None,
                processes: bool = True) -> tuple[Any, Any]:
    """``(client, cluster)``: connected to ``scheduler`` (cluster ``None``) or on a new ``LocalCluster``.

    The local cluster has ``workers`` single-threaded workers (default: the number of CPUs) and
    no dashboard. The caller closes both.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:  # the optional "dist" extra
        raise ImportError("sweeps on Dask need dask[distributed]: pip install 'meanfield[dist]'"
                          ) from err
    if scheduler is not None:
        if workers is not None:
            bad_value("workers", workers, "either workers= (local cluster) or scheduler=, not both")
        if not isinstance(scheduler, str) or not scheduler.strip():
            bad_value("scheduler", scheduler, "a scheduler address such as 'tcp://host:8786'")
        return Client(scheduler), None
    n = (os.cpu_count() or 1) if workers is None else check_int("workers", workers, minimum=1)
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=processes,
                           dashboard_address=None)
    return Client(cluster), cluster


def run_sweep(fn: Callable[..., Any], points: Iterable[Mapping[str, Any]], *,
              directory: str | os.PathLike[str], client: Any = None, workers: int | None = None,
              scheduler: str | None = None, processes: bool = True,
              progress: bool = False, description: str = "sweep",
              context: Mapping[str, Any] | None = None,
              lock_timeout: float | None = None) -> SweepResult:
    """:func:`run_points` on Dask, persisting every point in ``directory`` (resumable).

    Uses ``client`` if given; otherwise connects to ``scheduler`` or starts a ``LocalCluster``
    of ``workers`` workers (``processes=False``: threads in this process), closed at the end.
    """
    if client is not None:
        if workers is not None or scheduler is not None:
            bad_value("client", client, "either client= or workers=/scheduler=, not both")
        return run_points(fn, points, directory=directory, client=client, progress=progress,
                          description=description, context=context,
                          lock_timeout=lock_timeout)
    points = check_points(points)  # before a cluster is started or anything is sent
    own, cluster = open_client(workers=workers, scheduler=scheduler, processes=processes)
    try:
        return run_points(fn, points, directory=directory, client=own, progress=progress,
                          description=description, context=context,
                          lock_timeout=lock_timeout)
    finally:
        own.close()
        if cluster is not None:
            cluster.close()
