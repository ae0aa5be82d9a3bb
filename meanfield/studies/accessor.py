"""``ds.study``: the ``plot()`` and slope table of a study dataset (an xarray accessor).

Registered when :mod:`meanfield.studies` is imported::

    ds = studies.gamma_convergence(model, [10, 100, 1000])
    ds.study.plot()          # log–log errors with fitted and predicted slopes
    print(ds.study.slopes())
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
        """The natural figure of the dataset (a ``matplotlib.figure.Figure``)."""
        return plot(self._dataset, **kwargs)

    def slopes(self) -> str:
        """Fitted against predicted slopes, as a text table."""
        return slopes_table(self._dataset)
