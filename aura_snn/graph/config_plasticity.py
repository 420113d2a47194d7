r"""Plasticity rules and modulators in network files (read by :mod:`.config`).

**Rules.** A projection's ``plasticity`` table names a ``rule`` and its parameters;
an array of tables (``[[projection.plasticity]]``) attaches several, at most one of
them a synapse model (short-term plasticity):

.. code-block:: toml

    [[projection]]
    name = "in"
    ...
    plasticity = { rule = "stdp", a_plus = "0.02 mV", a_minus = "0.021 mV",
                   tau_plus = "20 ms", tau_minus = "20 ms", w_min = 0, w_max = "2 mV" }

Rule names are the entry points of the group :data:`RULE_GROUP` (``setup.cfg``: ``stdp``,
``triplet``, ``stp``, ``dopamine`` from :mod:`neuromodulation`), so the core never
imports the packages above it. Each names a class with a classmethod
``from_config(table, projection)`` that builds the rule (a
:class:`~aura_snn.graph.plasticity.PlasticityRule`) or synapse model (a
:class:`~aura_snn.graph.plasticity.SynapseModel`) for that built projection from the
table's other keys, and raises :class:`FieldError` (or any ``ValueError``) naming the
key; :func:`params_from_table` does the usual part (keys, units, the parameter
dataclass's checks). The reader turns the error into ``file:line: field: message``.

**Modulators.** ``[modulators.<name>]`` defines one signal per step,

.. math::
    s[t] = s_\text{tonic} + \sum_k a_k\,[\,n_k \le t < n_k + w\,], \qquad
    n_k = \text{round}(t_k/\Delta t),\; w = \max(1, \text{round}(\text{width}/\Delta t))

(``tonic``; phasic pulses of amplitude ``amplitudes[k]`` at ``times[k]`` lasting
``width``, default one step; pulses past the end of the run are dropped). Without
``region`` it is handed to the rules as ``Graph.run(modulators={name: s})``
(e.g. the dopamine release that :class:`neuromodulation.dopamine.DopamineSTDP` reads
through its ``modulator`` parameter): every rule's modulator must be defined and every
such signal read by a rule. With ``region = "E"`` it is that spiking region's
modulation input: ``input = "gain"`` multiplies the region's input (``tonic`` defaults
to 1, no unit) and ``input = "threshold"`` shifts its threshold (V, ``tonic`` defaults
to 0); several gains of one region multiply, thresholds add.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, fields
from importlib.metadata import entry_points
from typing import Any

import numpy as np

from ..errors import AuraError, ParameterError
from .config import _QUANTITY, NetworkConfig, Path_, to_si

#: Entry point group of the plasticity rules a network file may name.
RULE_GROUP = "aura_snn.rules"
MOD_KEYS = ("tonic", "times", "amplitudes", "width", "region", "input")
INPUTS = ("gain", "threshold")


class FieldError(ParameterError):
    """A bad value in a rule's table; ``field`` is its key (``None``: the table)."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field


def _number(value: Any, kind: str | None, allow_inf: bool) -> float:
    if allow_inf and isinstance(value, float) and value == math.inf:
        return value
    if kind is None and isinstance(value, str):
        m = _QUANTITY.match(value)
        if m and m.group(2):
            raise ValueError(f"expected a number without a unit, got {value!r}")
    return to_si(value, kind)


def params_from_table(cls: type, table: dict[str, Any], units: dict[str, str | None],
                      *, allow_inf: tuple[str, ...] = ()) -> Any:
    """An instance of the parameter dataclass ``cls`` from a file's ``table``.

    ``units`` gives each numeric field's kind of :data:`~aura_snn.graph.config.UNITS`
    (``"time"``, ``"voltage"``, ...: a number in SI units or a string such as
    ``"20 ms"``) or ``None`` (a plain number); fields whose default is a string take
    a string, fields in ``allow_inf`` may be ``inf``. Raises :class:`FieldError`
    naming the key: an unknown key, a wrong unit, a value that is not finite, or what
    the dataclass's own checks refuse (the first field its message names)."""
    names = [f.name for f in fields(cls)]
    kw: dict[str, Any] = {}
    for key, value in table.items():
        if key not in names:
            raise FieldError(key, f"unknown key {key!r}; allowed: rule, {', '.join(names)}")
        default = next(f.default for f in fields(cls) if f.name == key)
        if default is not MISSING and isinstance(default, str):
            if not isinstance(value, str):
                raise FieldError(key, f"expected a name, got {value!r}")
            kw[key] = value
            continue
        try:
            kw[key] = _number(value, units.get(key), key in allow_inf)
        except ValueError as exc:
            raise FieldError(key, str(exc)) from None
    try:
        return cls(**kw)
    except (AuraError, ValueError, TypeError) as exc:
        text = str(exc)
        named = [n for n in names if n in text.replace(",", " ").replace("=", " ").split()]
        given = [n for n in named if n in table]
        raise FieldError((given or named or [None])[0], text) from None


def check_weights_in_bounds(projection: Any, w_min: float, w_max: float) -> None:
    """Refuse a rule whose bounds exclude the projection's starting weights (the first
    update would clip them): a :class:`FieldError` naming ``w_min`` or ``w_max``."""
    w = projection.effective_weight().detach()
    if w.numel() == 0:
        return
    lo, hi = float(w.min()), float(w.max())
    if lo < w_min:
        raise FieldError("w_min", f"w_min = {w_min:g} V is above the smallest starting "
                                  f"weight {lo:g} V of projection {projection.name!r}")
    if hi > w_max:
        raise FieldError("w_max", f"w_max = {w_max:g} V is below the largest starting "
                                  f"weight {hi:g} V of projection {projection.name!r}")


def rule_names() -> dict[str, Any]:
    """The entry points of :data:`RULE_GROUP` by rule name."""
    return {ep.name: ep for ep in entry_points(group=RULE_GROUP)}


def _rule_class(cfg: NetworkConfig, name: Any, path: Path_) -> type:
    found = rule_names()
    if not found:
        raise cfg.error(path, f"no plasticity rules are installed (entry points of group "
                              f"{RULE_GROUP!r}; the neuromodulation package provides them)")
    if name not in found:
        raise cfg.error(path, f"unknown rule {name!r}; rules: {', '.join(sorted(found))}")
    try:
        cls = found[name].load()
    except ImportError as exc:
        raise cfg.error(path, f"rule {name!r} ({found[name].value}) failed to import: "
                              f"{exc}") from None
    if not callable(getattr(cls, "from_config", None)):
        raise cfg.error(path, f"rule {name!r} ({found[name].value}) has no from_config")
    return cls


def _tables(cfg: NetworkConfig, raw: Any, base: Path_) -> list[tuple[dict, Path_]]:
    if isinstance(raw, dict):
        return [(raw, base)]
    if isinstance(raw, list) and raw and all(isinstance(t, dict) for t in raw):
        return [(t, (*base, j)) for j, t in enumerate(raw)]
    raise cfg.error(base, f"must be a table with a 'rule' or an array of them, got {raw!r}")


def attach_plasticity(cfg: NetworkConfig, graph: Any) -> None:
    """Build every projection's ``plasticity`` rules and attach them to ``graph``
    (module docstring); errors name the file, line and field."""
    from .plasticity import PlasticityRule, SynapseModel

    for i, pr in enumerate(cfg.data["projection"]):
        if "plasticity" not in pr:
            continue
        proj = graph.projections[pr["name"]]
        for table, path in _tables(cfg, pr["plasticity"], ("projection", i, "plasticity")):
            if "rule" not in table:
                raise cfg.error(path, f"missing key 'rule'; rules: "
                                      f"{', '.join(sorted(rule_names()))}")
            cls = _rule_class(cfg, table["rule"], (*path, "rule"))
            try:
                obj = cls.from_config({k: v for k, v in table.items() if k != "rule"}, proj)
            except FieldError as exc:
                raise cfg.error(path if exc.field is None else (*path, exc.field),
                                str(exc)) from None
            except (AuraError, ValueError, TypeError) as exc:
                raise cfg.error(path, str(exc)) from None
            where = (*path, "rule")
            if isinstance(obj, SynapseModel):
                if proj.synapse is not None:
                    raise cfg.error(where, f"projection {proj.name!r} already has a synapse "
                                           f"model ({type(proj.synapse).__name__}); one per "
                                           f"projection")
                proj.synapse = obj
                continue
            if not isinstance(obj, PlasticityRule):
                raise cfg.error(where, f"{cls.__name__}.from_config returned "
                                       f"{type(obj).__name__}, not a rule or synapse model")
            try:  # the rule's state for this projection: a rule that does not fit says so
                obj.initial_state(proj, 1, graph.device, graph.dtype)
            except (AuraError, ValueError, TypeError) as exc:
                raise cfg.error(where, f"rule {table['rule']!r} does not fit projection "
                                       f"{proj.name!r} ({proj.n_pre} -> {proj.n_post} "
                                       f"neurons, {proj.nnz} synapses): {exc}") from None
            proj.add_rule(obj)


def _signal(cfg: NetworkConfig, name: str, m: dict, path: Path_, kind: str | None,
            tonic: float) -> np.ndarray:
    """``s[t]`` of one modulator (module docstring), float64 ``[T]``."""
    def num(value: Any, key: str, k: str | None) -> float:
        try:
            return _number(value, k, False)
        except ValueError as exc:
            raise cfg.error((*path, key), str(exc)) from None

    steps = cfg.steps
    s = np.full(steps, num(m.get("tonic", tonic), "tonic", kind))
    times = m.get("times", [])
    if not isinstance(times, list):
        raise cfg.error((*path, "times"), f"must be a list of times, got {times!r}")
    amps = m.get("amplitudes", 1.0 if times else [])
    amps = [amps] * len(times) if not isinstance(amps, list) else amps
    if len(amps) != len(times):
        raise cfg.error((*path, "amplitudes"), f"needs one amplitude per time ({len(times)}) "
                                               f"or one number, got {len(amps)}")
    width = num(m.get("width", cfg.dt), "width", "time")
    if width < 0:
        raise cfg.error((*path, "width"), f"must be >= 0 s, got {width:g} s")
    n_w = max(1, int(round(width / cfg.dt)))
    for t_raw, a_raw in zip(times, amps, strict=True):
        t = num(t_raw, "times", "time")
        if t < 0:
            raise cfg.error((*path, "times"), f"must be >= 0 s, got {t:g} s")
        start = int(round(t / cfg.dt))
        s[start:start + n_w] += num(a_raw, "amplitudes", kind)
    return s


def modulator_inputs(cfg: NetworkConfig, graph: Any) -> tuple[dict[str, Any],
                                                              dict[str, dict[str, Any]]]:
    """``(modulators, modulation)`` for :meth:`~aura_snn.graph.Graph.run` from the file's
    ``[modulators]`` (module docstring), as ``[T]`` tensors of the graph's dtype; also
    checks that the rules' modulators are defined and the signals are read."""
    import torch

    from .regions import SpikingRegion

    mods: dict[str, Any] = {}
    modulation: dict[str, dict[str, Any]] = {}
    signals: dict[str, Path_] = {}
    for name, m in cfg.data["modulators"].items():
        path: Path_ = ("modulators", name)
        if not isinstance(m, dict):
            raise cfg.error(path, f"must be a table of {', '.join(MOD_KEYS)}, got {m!r}")
        for k in m:
            if k not in MOD_KEYS:
                raise cfg.error((*path, k), f"unknown key {k!r}; allowed: {', '.join(MOD_KEYS)}")
        if "input" in m and "region" not in m:
            raise cfg.error((*path, "input"), "'input' needs a 'region'")
        region = m.get("region")
        if region is None:
            mods[name] = torch.as_tensor(_signal(cfg, name, m, path, None, 0.0),
                                         dtype=graph.dtype)
            signals[name] = path
            continue
        if region not in graph.regions:
            raise cfg.error((*path, "region"), f"unknown region {region!r}; regions are "
                                               f"{list(graph.regions)}")
        if not isinstance(graph.regions[region], SpikingRegion):
            raise cfg.error((*path, "region"), f"region {region!r} "
                                               f"({graph.regions[region].kind}) takes no "
                                               f"modulation input; only spiking regions do")
        what = m.get("input", "gain")
        if what not in INPUTS:
            raise cfg.error((*path, "input"), f"must be one of {', '.join(map(repr, INPUTS))}; "
                                              f"got {what!r}")
        gain = what == "gain"
        s = torch.as_tensor(_signal(cfg, name, m, path, None if gain else "voltage",
                                    1.0 if gain else 0.0), dtype=graph.dtype)
        old = modulation.setdefault(region, {}).get(what)
        modulation[region][what] = s if old is None else (old * s if gain else old + s)
    read: dict[str, tuple[str, int]] = {}
    for i, pr in enumerate(cfg.data["projection"]):
        for rule in graph.projections[pr["name"]].rules:
            name = getattr(getattr(rule, "params", None), "modulator", None)
            if isinstance(name, str):
                read.setdefault(name, (pr["name"], i))
                if name not in mods:
                    raise cfg.error(("projection", i, "plasticity"), (
                        f"the rule of projection {pr['name']!r} reads the modulator "
                        f"{name!r}, which [modulators] does not define (signals: "
                        f"{sorted(mods)})"))
    for name, path in signals.items():
        if name not in read:
            raise cfg.error(path, f"signal {name!r} is read by no rule (rules read "
                                  f"{sorted(read)}); give it a 'region' to make it a "
                                  f"modulation input, or remove it")
    return mods, modulation


def weight_samples(cfg: NetworkConfig, graph: Any) -> dict[str, tuple[np.ndarray, int]]:
    """Per plastic projection (one with rules), the synapses whose weights
    ``weight_trajectories.png`` shows and the steps between rows: a sample of
    ``[output].weight_samples`` synapses (indices of :meth:`~aura_snn.graph.projection.
    Projection.to_coo`, drawn without replacement with a seed of the file's seed and
    the projection's name, sorted), every ``[output].weight_every`` steps (default:
    about 500 rows over the run)."""
    from .regions import default_seed

    k = int(cfg.output.get("weight_samples", 20))
    every = cfg.output.get("weight_every") or max(1, cfg.steps // 500)
    out = {}
    for name, p in graph.projections.items():
        if not p.rules:
            continue
        rng = np.random.default_rng(default_seed(cfg.seed, f"weights:{name}"))
        idx = np.sort(rng.choice(p.nnz, size=min(k, p.nnz), replace=False))
        out[name] = (idx.astype(np.int64), int(every))
    return out


__all__ = ["FieldError", "INPUTS", "MOD_KEYS", "RULE_GROUP", "attach_plasticity",
           "check_weights_in_bounds", "modulator_inputs", "params_from_table", "rule_names",
           "weight_samples"]
