"""meanfield: the strong-coupling limit of mean-field neuron networks.

The model layer (populations, separable coupling, named models, the numeric view). Solvers live
in :mod:`solvers`, symbolic asymptotics in :mod:`asymptotics`.
"""

from importlib.metadata import PackageNotFoundError, version

from meanfield import fhn, models
from meanfield.errors import ResolutionWarning
from meanfield.expressions import allowed_names, parse, sigmoid, t, x
from meanfield.model import ExternalInput, Model, Population
from meanfield.numeric import NumericModel, numeric

try:
    __version__ = version("meanfield")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = [
    "ExternalInput",
    "Model",
    "NumericModel",
    "Population",
    "ResolutionWarning",
    "__version__",
    "allowed_names",
    "fhn",
    "models",
    "numeric",
    "parse",
    "sigmoid",
    "t",
    "x",
]
