"""Plasticity and neuromodulators acting on :mod:`aura_snn` projections.

Rules for the graph's plasticity socket (pair/triplet STDP, dopamine three-factor,
Tsodyks-Markram STP, homeostasis, tagging and capture, structural plasticity), the
differentiable plastic layer (Miconi 2018/2019), EWC, adenosine sleep pressure,
ACh/NE and the amygdala/endocrine/thalamic gates.
"""

from ._chunks import ChunkedRun, run_chunked  # noqa: E402,F401
from .adenosine import AdenosineParams, AdenosineState  # noqa: E402,F401
from .attention import Acetylcholine, Norepinephrine  # noqa: E402,F401
from .dopamine import DopamineSTDP, DopamineSTDPParameters, RPEParameters, rpe_release  # noqa: E402,F401
from .ewc import EWC, diagonal_fisher  # noqa: E402,F401
from .gates import Amygdala, Endocrine, Thalamus  # noqa: E402,F401
from .homeostasis import (  # noqa: E402,F401,E501
    IntrinsicThreshold,
    IntrinsicThresholdParameters,
    SynapticScaling,
    SynapticScalingParameters,
)
from .plastic import PlasticLinear, PlasticRun, PlasticState  # noqa: E402,F401
from .stdp import PairSTDP, PairSTDPParameters, TripletSTDP, TripletSTDPParameters  # noqa: E402,F401
from .stp import TsodyksMarkram, TsodyksMarkramParameters  # noqa: E402,F401
from .structural import StructuralParameters, StructuralPlasticity  # noqa: E402,F401
from .tagging import SynapticTagging, TaggingParameters  # noqa: E402,F401
