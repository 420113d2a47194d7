"""Plasticity and neuromodulators acting on :mod:`aura_snn` projections.

Built in a later issue: rules read pre/post traces of a projection and write weight
updates outside autograd.
"""

from .plastic import PlasticLinear, PlasticRun, PlasticState  # noqa: E402,F401
from .ewc import EWC, diagonal_fisher  # noqa: E402,F401
from .adenosine import AdenosineParams, AdenosineState  # noqa: E402,F401
from .stdp import PairSTDP, PairSTDPParameters, TripletSTDP, TripletSTDPParameters  # noqa: E402,F401
from .stp import TsodyksMarkram, TsodyksMarkramParameters  # noqa: E402,F401
from .gates import Amygdala, Endocrine, Thalamus  # noqa: E402,F401
from .attention import Acetylcholine, Norepinephrine  # noqa: E402,F401
from .dopamine import DopamineSTDP, DopamineSTDPParameters, RPEParameters, rpe_release  # noqa: E402,F401
from .homeostasis import IntrinsicThreshold, IntrinsicThresholdParameters, SynapticScaling, SynapticScalingParameters  # noqa: E402,F401,E501
from .structural import StructuralParameters, StructuralPlasticity  # noqa: E402,F401
from ._chunks import ChunkedRun, run_chunked  # noqa: E402,F401
from .tagging import SynapticTagging, TaggingParameters  # noqa: E402,F401
