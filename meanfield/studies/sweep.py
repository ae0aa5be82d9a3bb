"""The sweep engine: independent points on ``dask.distributed``, each result written at once.

A sweep is a function ``fn(**point) -> xarray.Dataset`` and a list of points (dicts of plain
values). :func:`run_points` submits every point to a Dask client and, as each one finishes,
writes its dataset to ``<directory>/point-<key>.nc`` (``key`` a hash of the point; the file is
written under a temporary name and renamed, so a killed sweep never leaves a half-written
point). Running the same sweep again loads the finished points instead of recomputing them:
a killed sweep resumes and loses nothing. Without a directory nothing is written.

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
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meanfield.errors import bad_type, bad_value, check_int

POINT_ATTR = "sweep_point"
MANIFEST = "sweep.json"


def _plain(value: Any, name: str) -> Any:
    """A JSON-representable copy of a point value (numbers, strings, booleans, lists)."""
    import numpy as np

    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, name) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v, name) for k, v in value.items()}
    bad_type(name, value, "numbers, strings, booleans, or lists/tables of them")


def canonical(point: Mapping[str, Any]) -> str:
    """The point as sorted, compact JSON (the same point always gives the same text)."""
    if not isinstance(point, Mapping):
        bad_type("points", point, "mappings from parameter names to values")
    return json.dumps(_plain(dict(point), "points"), sort_keys=True, separators=(",", ":"))


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
    return [dict(zip(names, combo, strict=True)) for combo in
            itertools.product(*(values[n] for n in names))]


def _write(path: Path, dataset: Any, point: Mapping[str, Any]) -> None:
    dataset = dataset.copy()
    dataset.attrs[POINT_ATTR] = canonical(point)
    tmp = path.with_name(path.name + ".part")
    dataset.to_netcdf(tmp)
    os.replace(tmp, path)


def load_point(path: str | os.PathLike[str]) -> Any:
    """A finished point's dataset, read fully into memory."""
    import xarray as xr

    with xr.open_dataset(path) as ds:
        return ds.load()


def _check_result(result: Any, point: Mapping[str, Any]) -> Any:
    import xarray as xr

    if not isinstance(result, xr.Dataset):
        bad_type("fn", result, f"an xarray.Dataset returned for the point {dict(point)}")
    return result


def _evaluate(fn: Callable[..., Any], point: Mapping[str, Any]) -> Any:
    return fn(**point)


@dataclass(frozen=True, eq=False)
class SweepResult:
    """The datasets of a sweep (aligned with ``points``) and how many were computed or reused."""

    points: tuple[dict[str, Any], ...]
    datasets: tuple[Any, ...]
    computed: int
    reused: int
    directory: Path | None

    def to_xarray(self) -> Any:
        """All points in one dataset along a ``point`` dimension, parameters as coordinates."""
        return combine(self.points, self.datasets)


def combine(points: Sequence[Mapping[str, Any]], datasets: Sequence[Any]) -> Any:
    """Concatenate per-point datasets along ``point``; scalar parameters become coordinates."""
    import numpy as np
    import xarray as xr

    if not datasets:
        return xr.Dataset()
    stripped = []
    for ds in datasets:
        ds = ds.copy()
        ds.attrs.pop(POINT_ATTR, None)
        stripped.append(ds)
    out = xr.concat(stripped, dim="point", join="outer", combine_attrs="drop_conflicts")
    names = sorted({k for p in points for k in p})
    for name in names:
        if name in out.dims:
            continue
        values = [p.get(name) for p in points]
        if not all(isinstance(v, (int, float, str, bool)) for v in values):
            values = [json.dumps(_plain(v, name)) for v in values]  # lists: their JSON text
        out = out.assign_coords({name: ("point", np.array(values))})
    return out.assign_coords(point=np.arange(len(points)))


def run_points(fn: Callable[..., Any], points: Iterable[Mapping[str, Any]], *,
               directory: str | os.PathLike[str] | None = None, client: Any = None,
               progress: bool = False, description: str = "sweep",
               context: Mapping[str, Any] | None = None) -> SweepResult:
    """Evaluate ``fn(**point)`` (an ``xarray.Dataset``) for every point, on ``client`` if given.

    With ``directory``, finished points found there are loaded instead of computed, and each new
    point is written as soon as its result arrives. ``context`` (plain values: the model JSON and
    the settings ``fn`` has bound) enters every point's file name, so a directory shared by
    studies with other models or settings never hands their results to this one. If some points
    fail, the others are still written and a ``RuntimeError`` lists the failures (re-running
    retries only those).
    """
    if not callable(fn):
        bad_type("fn", fn, "a callable fn(**point) returning an xarray.Dataset")
    pts = [dict(p) if isinstance(p, Mapping) else p for p in points]
    keys = [point_key(p, context) for p in pts]
    if len(set(keys)) != len(keys):
        bad_value("points", pts, "distinct points (each point is computed once)")
    folder = None if directory is None else Path(directory)
    results: list[Any] = [None] * len(pts)
    todo: list[int] = []
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        _write_manifest(folder, pts, context)
        for i, p in enumerate(pts):
            path = point_path(folder, p, context)
            if path.exists():
                results[i] = load_point(path)
            else:
                todo.append(i)
    else:
        todo = list(range(len(pts)))
    reused = len(pts) - len(todo)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(pts), initial=reused, desc=description, unit="point")
    failures: list[tuple[dict[str, Any], BaseException]] = []

    def finish(i: int, result: Any) -> None:
        result = _check_result(result, pts[i])
        if folder is not None:
            _write(point_path(folder, pts[i], context), result, pts[i])
        results[i] = result
        if bar is not None:
            bar.update(1)

    try:
        if client is None:
            for i in todo:
                try:
                    result = _evaluate(fn, pts[i])
                except Exception as err:  # recorded, the other points still run
                    failures.append((pts[i], err))
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
                    failures.append((pts[i], err))
                    continue
                finally:
                    future.release()
                finish(i, result)
    finally:
        if bar is not None:
            bar.close()
    if failures:
        lines = "; ".join(f"{p}: {type(e).__name__}: {e}" for p, e in failures[:5])
        raise RuntimeError(f"{len(failures)} of {len(pts)} sweep points failed ({lines}); the "
                           "finished points are kept, re-run to retry the failed ones")
    return SweepResult(points=tuple(pts), datasets=tuple(results), computed=len(todo),
                       reused=reused, directory=folder)


def _write_manifest(folder: Path, points: Sequence[Mapping[str, Any]],
                    context: Mapping[str, Any] | None = None) -> None:
    text = json.dumps({"points": [json.loads(canonical(p)) for p in points],
                       "context": json.loads(canonical(context)) if context else None}, indent=1)
    tmp = folder / (MANIFEST + ".part")
    tmp.write_text(text)
    os.replace(tmp, folder / MANIFEST)


def load_sweep(directory: str | os.PathLike[str]) -> SweepResult:
    """The finished points of a sweep directory (in the order of its manifest)."""
    folder = Path(directory)
    manifest = folder / MANIFEST
    if not manifest.exists():
        bad_value("directory", str(folder), f"a sweep directory containing {MANIFEST}")
    recorded = json.loads(manifest.read_text())
    points, context = recorded["points"], recorded.get("context")
    done = [p for p in points if point_path(folder, p, context).exists()]
    return SweepResult(points=tuple(done), datasets=tuple(load_point(point_path(folder, p, context))
                                                          for p in done),
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
              context: Mapping[str, Any] | None = None) -> SweepResult:
    """:func:`run_points` on Dask, persisting every point in ``directory`` (resumable).

    Uses ``client`` if given; otherwise connects to ``scheduler`` or starts a ``LocalCluster``
    of ``workers`` workers (``processes=False``: threads in this process), closed at the end.
    """
    if client is not None:
        if workers is not None or scheduler is not None:
            bad_value("client", client, "either client= or workers=/scheduler=, not both")
        return run_points(fn, points, directory=directory, client=client, progress=progress,
                          description=description, context=context)
    own, cluster = open_client(workers=workers, scheduler=scheduler, processes=processes)
    try:
        return run_points(fn, points, directory=directory, client=own, progress=progress,
                          description=description, context=context)
    finally:
        own.close()
        if cluster is not None:
            cluster.close()
