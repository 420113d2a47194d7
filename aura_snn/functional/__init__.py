"""Pure step functions: the one source of truth for the maths.

Every model is ``step(x, state, p, dt) -> (spikes, new_state)`` with a frozen
parameter dataclass and a ``NamedTuple`` state; see each module's docstring for its
ODE, discretisation and units.
"""

from . import alif, conventions, cuba, encoders, lif, surrogate
from .alif import ALIFParameters, ALIFState
from .cuba import CubaLIFParameters, CubaLIFState
from .decay import decay, tau_from_decay
from .firing import FiringParameters
from .lif import LIFParameters, LIFState
from .loop import MultiStep, run
from .surrogate import spike, surrogate_grad

__all__ = [
    "ALIFParameters", "ALIFState", "CubaLIFParameters", "CubaLIFState", "FiringParameters",
    "LIFParameters", "LIFState", "MultiStep", "alif", "conventions", "cuba", "decay",
    "encoders", "lif", "run", "spike", "surrogate", "surrogate_grad", "tau_from_decay",
]
