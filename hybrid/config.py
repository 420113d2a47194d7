"""``HybridConfig``: every hyper-parameter of the hippocampal transformer, validated.

A frozen dataclass: each field is checked on construction and a bad value raises a
:class:`~aura_snn.errors.ParameterError` (a ``ValueError``) or
:class:`~aura_snn.errors.ParameterTypeError` (a ``TypeError``) naming the field and the
value. :meth:`HybridConfig.from_dict` refuses unknown keys by name, so a typo in a
config file never passes silently; :meth:`to_json` / :meth:`from_json` round-trip.

``ffn`` chooses each block's feed-forward network: ``"dense"`` (GELU MLP) or
``"spiking"`` (:class:`hybrid.spiking_ffn.SpikingFFN`), given as one string for every
layer, a sequence of ``n_layers`` strings, or a mapping ``{layer index: kind}`` (other
layers dense). It is stored as a tuple of ``n_layers`` strings. The all-dense twin of
a config is ``config.replace(ffn="dense")``.

Per-layer switches (``memory_layers``, ``place_layers``, ``plastic_layers``,
``mod_layers``) are sequences of distinct layer indices, stored sorted as tuples; the
empty default switches the option off (:mod:`hybrid.memory_layer`, :mod:`hybrid.options`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from aura_snn._checks import check_choice, check_in_range, check_int, check_positive
from aura_snn.errors import ParameterError, ParameterTypeError
from aura_snn.functional.surrogate import SURROGATES

FFN_KINDS = ("dense", "spiking")
POSITIONS = ("rotary", "theta_gamma")
READOUTS = ("rate", "membrane")
INPUT_SCALINGS = ("direct", "ode")


def _layer_set(name: str, value: Any, n_layers: int) -> tuple[int, ...]:
    """A sequence of distinct layer indices in ``[0, n_layers)``, sorted."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise ParameterTypeError(f"{name} must be a sequence of layer indices, got {value!r}")
    out = sorted(check_int(f"{name}[{i}]", v, minimum=0) for i, v in enumerate(value))
    for index in out:
        if index >= n_layers:
            raise ParameterError(f"{name}: layer index {index} is past the depth "
                                 f"(n_layers={n_layers}: indices 0..{n_layers - 1})")
    if len(set(out)) != len(out):
        raise ParameterError(f"{name}: repeated layer index in {tuple(value)!r}")
    return tuple(out)


def _ffn_tuple(value: Any, n_layers: int) -> tuple[str, ...]:
    """Normalise ``ffn`` (str, sequence or ``{index: kind}``) to ``n_layers`` strings."""
    if isinstance(value, str):
        check_choice("ffn", value, FFN_KINDS)
        return (value,) * n_layers
    if isinstance(value, Mapping):
        kinds = ["dense"] * n_layers
        for key, kind in value.items():
            try:
                index = int(key)  # JSON object keys are strings
            except (TypeError, ValueError):
                raise ParameterTypeError(
                    f"ffn: layer index must be an integer, got {key!r}") from None
            if not 0 <= index < n_layers:
                raise ParameterError(f"ffn: layer index {index} is past the depth "
                                     f"(n_layers={n_layers}: indices 0..{n_layers - 1})")
            kinds[index] = check_choice(f"ffn[{index}]", kind, FFN_KINDS)
        return tuple(kinds)
    if isinstance(value, Sequence):
        if len(value) != n_layers:
            raise ParameterError(f"ffn has {len(value)} entries for n_layers={n_layers} "
                                 f"(one kind per layer): {tuple(value)!r}")
        return tuple(check_choice(f"ffn[{i}]", k, FFN_KINDS) for i, k in enumerate(value))
    raise ParameterTypeError(f"ffn must be a string, a sequence of strings or a mapping "
                             f"{{layer index: kind}}, got {type(value).__name__}")


@dataclass(frozen=True)
class HybridConfig:
    """Hyper-parameters of :class:`hybrid.model.HippocampalTransformer`.

    Attributes:
        vocab_size: tokens in the vocabulary (>= 2).
        d_model: width of the residual stream (divisible by ``n_heads``; the head
            width must be even for rotary positions, ``d_model`` even and >= 6 for
            theta-gamma ones).
        n_heads: attention heads (>= 1).
        n_layers: transformer blocks (>= 1).
        d_ff: hidden width of each FFN (dense units or LIF neurons, >= 1).
        context: longest sequence (tokens) the model attends over, KV cache included.
        dropout: dropout probability on attention weights and residual branches, [0, 1).
        positions: ``"rotary"`` (RoPE on queries and keys) or ``"theta_gamma"`` (the
            theta-gamma code of :mod:`aura_snn.cells.theta_gamma` added to embeddings).
        rotary_base: RoPE base :math:`b` (frequencies :math:`b^{-2i/d_h}`), > 1.
        theta_hz, gamma_hz: theta and gamma frequencies of the theta-gamma code (Hz).
        ffn: FFN kind per layer (module docstring).
        T: LIF steps per token in spiking FFNs (>= 1).
        readout: spiking FFN readout, ``"rate"`` (spike count / T) or ``"membrane"``
            (time-averaged membrane potential, V).
        tau_mem: LIF membrane time constant (s), > ``dt``.
        dt: LIF integration step (s).
        threshold: LIF threshold (V), > 0.
        input_scaling: LIF input scaling, ``"direct"`` (current added each step) or
            ``"ode"`` (scaled by :math:`1 - e^{-dt/\\tau}`), see :mod:`aura_snn.functional.lif`.
        surrogate: surrogate derivative of the spike (:mod:`aura_snn.functional.surrogate`);
            the triangle by default, wide enough for T = 4 (:mod:`hybrid.spiking_ffn`).
        slope: surrogate slope (``None``: the surrogate's default).
        tie_embeddings: output head shares the token embedding matrix.
        norm_eps: LayerNorm epsilon (> 0).
        init_std: standard deviation of embedding / attention weight init (> 0).
        memory_layers: layers that retrieve from (and write to) an episodic memory
            (:mod:`hybrid.memory_layer`); ``()``: no memory.
        memory_top_k: memories retrieved per token and memory layer (>= 1).
        memory_write_threshold: amygdala salience :math:`s \\in [0, 1]` at or above
            which a token's state is written.
        thalamic_gate: gate input embeddings by a learned thalamic salience
            (:class:`hybrid.options.ThalamicGate`).
        place_layers: layers followed by a place-cell sparse code of the hidden state
            (:class:`hybrid.options.PlaceCodeLayer`).
        place_cells: place cells per place layer (>= 1).
        place_sparsity: active fraction of the place code, (0, 1].
        plastic_layers: layers with a Hebbian plastic branch
            (:class:`hybrid.options.PlasticBranch`).
        plastic_eta: Hebbian rate :math:`\\eta` of the plastic branches, [0, 1].
        mod_layers: blocks behind a mixture-of-depths router
            (:class:`hybrid.options.MoDBlock`).
        mod_capacity: fraction :math:`c \\in (0, 1]` of tokens a routed block processes.
        endocrine_lr: the training loop scales its learning rate by the endocrine gate
            (:class:`hybrid.options.EndocrineLR`).
    """

    vocab_size: int = 259
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 4
    d_ff: int = 512
    context: int = 256
    dropout: float = 0.0
    positions: str = "rotary"
    rotary_base: float = 10000.0
    theta_hz: float = 8.0
    gamma_hz: float = 40.0
    ffn: Any = "dense"
    T: int = 4
    readout: str = "rate"
    tau_mem: float = 10e-3
    dt: float = 1e-3
    threshold: float = 1.0
    input_scaling: str = "direct"
    surrogate: str = "triangle"
    slope: float | None = None
    tie_embeddings: bool = True
    norm_eps: float = 1e-5
    init_std: float = 0.02
    memory_layers: Any = ()
    memory_top_k: int = 4
    memory_write_threshold: float = 0.5
    thalamic_gate: bool = False
    place_layers: Any = ()
    place_cells: int = 64
    place_sparsity: float = 0.05
    plastic_layers: Any = ()
    plastic_eta: float = 0.1
    mod_layers: Any = ()
    mod_capacity: float = 1.0
    endocrine_lr: bool = False

    def __post_init__(self) -> None:
        for name, low in (("vocab_size", 2), ("d_model", 1), ("n_heads", 1), ("n_layers", 1),
                          ("d_ff", 1), ("context", 1), ("T", 1)):
            object.__setattr__(self, name, check_int(name, getattr(self, name), minimum=low))
        if self.d_model % self.n_heads:
            raise ParameterError(f"d_model must be divisible by n_heads, got d_model="
                                 f"{self.d_model}, n_heads={self.n_heads}")
        check_choice("positions", self.positions, POSITIONS)
        if self.positions == "rotary" and self.head_dim % 2:
            raise ParameterError(f"rotary positions need an even head width d_model / n_heads,"
                                 f" got {self.head_dim}")
        if self.positions == "theta_gamma" and (self.d_model % 2 or self.d_model < 6):
            raise ParameterError(f"theta_gamma positions need an even d_model >= 6, "
                                 f"got {self.d_model}")
        if not isinstance(self.dropout, (int, float)) or isinstance(self.dropout, bool) \
                or not 0.0 <= self.dropout < 1.0:
            raise ParameterError(f"dropout must lie in [0, 1), got {self.dropout!r}")
        check_positive("rotary_base", self.rotary_base)
        if self.rotary_base <= 1:
            raise ParameterError(f"rotary_base must be > 1, got {self.rotary_base!r}")
        check_positive("theta_hz", self.theta_hz, "Hz")
        check_positive("gamma_hz", self.gamma_hz, "Hz")
        object.__setattr__(self, "ffn", _ffn_tuple(self.ffn, int(self.n_layers)))
        check_choice("readout", self.readout, READOUTS)
        check_positive("dt", self.dt, "s")
        check_positive("tau_mem", self.tau_mem, "s")
        if self.dt >= self.tau_mem:
            raise ParameterError(f"dt must be smaller than tau_mem: got dt={self.dt!r} s and "
                                 f"tau_mem={self.tau_mem!r} s")
        check_positive("threshold", self.threshold, "V")
        check_choice("input_scaling", self.input_scaling, INPUT_SCALINGS)
        check_choice("surrogate", self.surrogate, SURROGATES)
        if self.slope is not None:
            check_positive("slope", self.slope)
        if not isinstance(self.tie_embeddings, bool):
            raise ParameterTypeError(f"tie_embeddings must be a bool, got "
                                     f"{self.tie_embeddings!r}")
        check_positive("norm_eps", self.norm_eps)
        check_positive("init_std", self.init_std)
        self._check_options()

    def _check_options(self) -> None:
        n = int(self.n_layers)
        for name in ("memory_layers", "place_layers", "plastic_layers", "mod_layers"):
            object.__setattr__(self, name, _layer_set(name, getattr(self, name), n))
        for name in ("memory_top_k", "place_cells"):
            object.__setattr__(self, name, check_int(name, getattr(self, name), minimum=1))
        check_in_range("memory_write_threshold", self.memory_write_threshold, 0.0, 1.0)
        check_in_range("place_sparsity", self.place_sparsity, 0.0, 1.0, low_inclusive=False)
        check_in_range("plastic_eta", self.plastic_eta, 0.0, 1.0)
        check_in_range("mod_capacity", self.mod_capacity, 0.0, 1.0, low_inclusive=False)
        for name in ("thalamic_gate", "endocrine_lr"):
            if not isinstance(getattr(self, name), bool):
                raise ParameterTypeError(f"{name} must be a bool, got {getattr(self, name)!r}")

    # -- derived -------------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        """Width of one attention head, ``d_model // n_heads``."""
        return self.d_model // self.n_heads

    @property
    def spiking_layers(self) -> tuple[int, ...]:
        """Indices of the layers whose FFN is spiking."""
        return tuple(i for i, k in enumerate(self.ffn) if k == "spiking")

    # -- copies and files ----------------------------------------------------------
    def replace(self, **changes: Any) -> HybridConfig:
        """A validated copy with ``changes`` applied (``replace(ffn="dense")``: the
        all-dense twin). Unknown field names raise :class:`ParameterError`."""
        _check_keys(changes, "replace")
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dictionary (``ffn`` as a list)."""
        d = asdict(self)
        d["ffn"] = list(self.ffn)
        for name in ("memory_layers", "place_layers", "plastic_layers", "mod_layers"):
            d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HybridConfig:
        """Build from a mapping; unknown keys raise :class:`ParameterError` naming them."""
        if not isinstance(data, Mapping):
            raise ParameterTypeError(f"config must be a mapping, got {type(data).__name__}")
        _check_keys(data, "config")
        return cls(**dict(data))

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> HybridConfig:
        """Inverse of :meth:`to_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ParameterError(f"config is not valid JSON: {exc}") from None
        for key in ("rotary_base", "theta_hz", "gamma_hz", "tau_mem", "dt", "threshold",
                    "memory_write_threshold", "place_sparsity", "plastic_eta", "mod_capacity"):
            if isinstance(data.get(key), int) and not isinstance(data.get(key), bool):
                data[key] = float(data[key])
        return cls.from_dict(data)


def _check_keys(data: Mapping[str, Any], what: str) -> None:
    known = {f.name for f in fields(HybridConfig)}
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise ParameterError(f"{what}: unknown key(s) {', '.join(map(repr, unknown))}; "
                             f"known keys: {', '.join(sorted(known))}")

