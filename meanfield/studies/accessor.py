"""``ds.study``: the ``plot()`` and slope table of a study dataset (an xarray accessor).

Registered when :mod:`meanfield.studies` is imported::

    ds = studies.gamma_convergence(model, [10, 100, 1000])
    ds.study.plot(name="chemical")   # log–log errors with fitted and predicted slopes
    print(ds.study.slopes())
    sol.to_xarray().study.plot()     # a solve: snapshots, log-density image, mean ± sd

Figures are saved with :func:`meanfield.studies.plotting.save` (PNG, and PDF on request).
"""

from __future__ import annotations

from typing import Any

import xarray as xr

from meanfield.studies.plotting import plot, slopes_table


@xr.register_dataset_accessor("study")
class StudyAccessor:
    """Figures and tables of a dataset returned by a study (or a solve)."""

    def __init__(self, dataset: xr.Dataset) -> None:
        self._dataset = dataset

    def plot(self, **kwargs: Any) -> Any:
        """The natural figure of the dataset (a ``matplotlib.figure.Figure``).

        Options (``name`` of the model for the title, ``title``, and for solves ``balance``,
        ``max_frames``) go to :func:`meanfield.studies.plotting.plot`. Without ``name`` the title
        uses ``ds.attrs["model_name"]`` when the dataset records one, else the populations
        (:func:`~meanfield.studies.plotting.model_label`).
        """
        return plot(self._dataset, **kwargs)

    def slopes(self) -> str:
        """Fitted against predicted slopes, as a text table."""
        return slopes_table(self._dataset)
