r"""Network files: a graph, its inputs, monitors and run settings in TOML or YAML.

A file has these tables (TOML shown; YAML uses the same keys, ``region:`` etc. as
lists of mappings). Quantities are SI numbers or strings with a unit: ``"0.1 ms"``,
``"-49 mV"``, ``"20 Hz"`` (units: s, ms, us, ns, V, mV, uV, Hz, kHz, m, mm, um).

.. code-block:: toml

    [simulation]
    dt = "0.1 ms"            # step
    duration = "1 s"         # simulated time
    seed = 42                # connectivity, random initial values, Poisson streams
    backend = "auto"         # auto | engine | torch
    dtype = "float64"        # float64 | float32

    [[region]]
    name = "E"
    size = 3200
    model = "cuba_refractory"   # a neuron model of the registry, poisson or input
    params = { tau_mem = "20 ms", tau_syn = ["5 ms", "10 ms"], threshold = "-50 mV" }
    init = { v = { uniform = ["-60 mV", "-50 mV"] } }
    positions = { layout = "grid", width = 1.0 }   # for distance connectivity

    [[projection]]
    name = "EE"
    pre = "E"
    post = "E"
    receptor = "exc"
    weight = "1.62 mV"       # or { dist = "normal", mean = "1 mV", std = "0.1 mV" }
    sign = "exc"             # exc | inh (optional)
    delay = "0 ms"           # a multiple of dt
    connectivity = { rule = "fixed_probability", p = 0.02 }
    # rules: fixed_probability (p, autapses), fixed_indegree (k), fixed_outdegree (k),
    #        one_to_one, all_to_all (autapses), distance (p_max, sigma, profile, periodic)

    [[monitor]]
    target = "E"
    variable = "v"           # spikes | output | v | i | i:exc | ref | weights
    neurons = [0, 1, 2]
    every = 10

    [output]
    format = "npz"           # npz | h5
    plots = true
    raster_neurons = 200     # neurons per region in raster.png (evenly spaced)
    raster_window = "1 s"    # raster.png shows the last 1 s, or ["10 s", "11 s"]
    weight_samples = 20      # synapses per plastic projection in weight_trajectories.png
    weight_every = 100       # steps between their recorded weights (default: ~500 rows)

A projection may carry a ``plasticity`` table (or an array of them: ``[[projection.
plasticity]]``) naming a ``rule`` and its parameters, and a ``[modulators.<name>]``
table defines a signal per step (a tonic level plus phasic pulses) that rules read by
name or that scales a region's input (``region``, ``input = "gain"`` or
``"threshold"``); both are read by :mod:`.config_plasticity`, whose docstring gives
their keys.

Region ``params`` are the fields of the model's parameter dataclass in
:mod:`aura_snn.functional` (``poisson`` regions take ``rate``; ``input`` regions take
``file``, an ``.npy`` array ``[T, size]`` or ``[T, B, size]`` relative to the config
file). Every error is a :class:`~aura_snn.errors.ConfigError` naming the file, the
line of the offending key and the field, e.g. ``cuba.toml:12: region[0].params.tau_mem:
expected a time ...``.

This module imports numpy (not torch) at import time; :func:`build_graph` imports torch.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AuraError, ConfigError

UNITS: dict[str, tuple[float, str]] = {
    "s": (1.0, "time"), "ms": (1e-3, "time"), "us": (1e-6, "time"), "µs": (1e-6, "time"),
    "ns": (1e-9, "time"), "V": (1.0, "voltage"), "mV": (1e-3, "voltage"),
    "uV": (1e-6, "voltage"), "µV": (1e-6, "voltage"), "Hz": (1.0, "rate"),
    "kHz": (1e3, "rate"), "m": (1.0, "length"), "mm": (1e-3, "length"),
    "um": (1e-6, "length"),
}
_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-zµ]*)\s*$")
_UNIT_HINT = {"time": "a time (s, ms, us)", "voltage": "a potential (V, mV, uV)",
              "rate": "a rate (Hz, kHz)", "length": "a length (m, mm, um)"}

TOP_KEYS = ("simulation", "region", "projection", "monitor", "output", "modulators")
SIM_KEYS = ("dt", "duration", "seed", "backend", "dtype")
REGION_KEYS = ("name", "size", "model", "params", "init", "positions", "rate", "file", "seed")
PROJ_KEYS = ("name", "pre", "post", "receptor", "weight", "sign", "delay", "connectivity",
             "seed", "plasticity")
MON_KEYS = ("target", "variable", "neurons", "every")
OUT_KEYS = ("format", "plots", "raster_neurons", "raster_window", "weight_samples",
            "weight_every")
SOURCE_MODELS = ("poisson", "input")
RULES = {
    "fixed_probability": ("p", "autapses", "seed"),
    "fixed_indegree": ("k", "autapses", "seed"),
    "fixed_outdegree": ("k", "autapses", "seed"),
    "one_to_one": (),
    "all_to_all": ("autapses",),
    "distance": ("p_max", "sigma", "profile", "periodic", "autapses", "seed"),
}
Path_ = tuple[str | int, ...]


# -- line numbers ---------------------------------------------------------------------
class LineMap:
    """Line (1-based) of each key path of a parsed file; unknown paths fall back to the
    nearest enclosing key that has a line."""

    def __init__(self, lines: dict[Path_, int]) -> None:
        self.lines = lines

    def line(self, path: Path_) -> int | None:
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return None


def _split_dotted(key: str) -> list[str]:
    parts, cur, quote = [], "", None
    for ch in key:
        if quote:
            if ch == quote:
                quote = None
            else:
                cur += ch
        elif ch in "\"'":
            quote = ch
        elif ch == ".":
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return parts


_INLINE_KEY = re.compile(r"([A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')\s*=")


def _resolve(name: Path_, counts: dict[Path_, int], array: bool = False) -> Path_:
    """The key path of a TOML table header: each prefix that is an array of tables
    stands for its latest element (``[projection.plasticity]`` is
    ``("projection", k, "plasticity")``); with ``array``, the last part is the array."""
    out: Path_ = ()
    for j, part in enumerate(name):
        out = (*out, part)
        if out in counts and not (array and j == len(name) - 1):
            out = (*out, counts[out] - 1)
    return out


def toml_lines(text: str) -> LineMap:
    """Map key paths of a TOML document to lines by scanning it (``tomllib`` keeps no
    positions). Handles tables, arrays of tables, dotted keys and one level of inline
    tables on the key's line."""
    lines: dict[Path_, int] = {}
    counts: dict[Path_, int] = {}
    base: Path_ = ()
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip() if '"' not in raw and "'" not in raw else raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[["):
            # an array of tables inside the latest element of another: [[projection.plasticity]]
            name = _resolve(tuple(_split_dotted(line.strip("[] \t"))), counts, array=True)
            idx = counts.get(name, 0)
            counts[name] = idx + 1
            base = (*name, idx)
            lines.setdefault(name, no)
            lines[base] = no
            continue
        if line.startswith("["):
            # a sub-table of the latest array-of-tables element: [region.params]
            base = _resolve(tuple(_split_dotted(line.strip("[] \t"))), counts)
            lines[base] = no
            continue
        if "=" in line:
            key = line.split("=", 1)[0]
            path = (*base, *_split_dotted(key))
            lines[path] = no
            rest = line.split("=", 1)[1]
            if "{" in rest:
                for m in _INLINE_KEY.finditer(rest):
                    lines.setdefault((*path, m.group(1).strip("\"'")), no)
    return LineMap(lines)


def yaml_load_with_lines(text: str, name: str = "<yaml>") -> tuple[Any, LineMap]:
    """Parse YAML (safe) and map every key path to its line.

    Aliases (``*name``) are refused before anything is expanded: a file of a few hundred
    bytes can nest aliases so that expanding them takes gigabytes ("billion laughs").
    Composing is linear (an alias is the same node object again), so the walk below
    stops at the first node it meets twice, which is the first alias in document
    order, and raises a :class:`ConfigError` naming ``name``, the alias's line and field.
    """
    import yaml

    alias = _first_alias(text)
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    lines: dict[Path_, int] = {}
    seen: set[int] = set()

    def visit(n: Any, path: Path_) -> None:
        if id(n) in seen:
            line, anchor, anchor_line = alias or (None, "?", None)
            where = f"{name}:{line}" if line else name
            raise ConfigError(f"{where}: {_fmt_path(path)}: YAML aliases are not allowed "
                              f"(*{anchor} refers to the anchor &{anchor} of line "
                              f"{anchor_line}); write the value out")
        seen.add(id(n))

    def walk(n: Any, path: Path_) -> None:
        visit(n, path)
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = (*path, str(k.value))
                visit(k, key)
                lines[key] = k.start_mark.line + 1
                walk(v, key)
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                lines[(*path, i)] = v.start_mark.line + 1
                walk(v, (*path, i))
    if node is not None:
        walk(node, ())
    return yaml.safe_load(text), LineMap(lines)


def _first_alias(text: str) -> tuple[int, str, int | None] | None:
    """``(line, anchor, line of the anchor)`` of the first YAML alias, from the event
    stream (linear in the text: events expand nothing); None without aliases or when
    the alias names no anchor (composing reports that)."""
    import yaml

    anchors: dict[str, int] = {}
    for ev in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(ev, yaml.AliasEvent):
            if ev.anchor in anchors:
                return ev.start_mark.line + 1, ev.anchor, anchors[ev.anchor]
            return None
        anchor = getattr(ev, "anchor", None)
        if anchor is not None:
            anchors.setdefault(anchor, ev.start_mark.line + 1)
    return None


#: Deepest nesting of brackets a network file may have (the format needs 4 levels); a
#: deeper file would exhaust the parsers' recursion.
MAX_DEPTH = 64
_NEST = re.compile(r"[\[\]{}\"'#\n]")


def _check_depth(text: str, name: str) -> None:
    """Refuse brackets nested deeper than :data:`MAX_DEPTH` (outside strings and
    comments, which end at the end of a line here) before any parser recurses into them."""
    depth, line, quote, comment = 0, 1, "", False
    for m in _NEST.finditer(text):
        ch = m.group()
        if ch == "\n":
            line, quote, comment = line + 1, "", False
        elif comment:
            continue
        elif quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            comment = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(f"{name}:{line}: nested more than {MAX_DEPTH} levels deep; "
                                  f"a network file needs at most 4")
        else:
            depth = max(0, depth - 1)


def _decode(raw: bytes, p: Path) -> str:
    """The file's text (UTF-8, with or without a byte-order mark), or a
    :class:`ConfigError` naming the line, field and column of the first bad byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = exc.start + (3 if raw.startswith(b"\xef\xbb\xbf") else 0)
        line = raw.count(b"\n", 0, start) + 1
        col = start - (raw.rfind(b"\n", 0, start) + 1) + 1
        hint = " (it looks like UTF-16)" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        field_ = _field_at(raw.decode("utf-8", errors="replace"), p.suffix.lower(), line)
        raise ConfigError(f"{p.name}:{line}: {field_}: not UTF-8 text (byte "
                          f"0x{raw[start]:02x} at column {col}){hint}; save the file as "
                          f"UTF-8") from None


def _field_at(text: str, suffix: str, line: int) -> str:
    """The deepest key path on ``line`` of a file that may not parse, for messages."""
    try:
        if suffix == ".toml":
            lines = toml_lines(text).lines
        else:
            _check_depth(text, "")
            lines = yaml_load_with_lines(text)[1].lines
    except Exception:  # noqa: BLE001 - the caller reports the encoding either way
        return "(top level)"
    paths = [path for path, no in lines.items() if no == line]
    return _fmt_path(max(paths, key=len)) if paths else "(top level)"


# -- parsed file ----------------------------------------------------------------------
@dataclass
class NetworkConfig:
    """A parsed, validated network file (no graph built yet)."""

    path: Path
    data: dict[str, Any]
    lines: LineMap
    dt: float = 1e-4
    duration: float = 1.0
    seed: int = 0
    backend: str = "auto"
    dtype: str = "float64"
    output: dict[str, Any] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return max(1, int(round(self.duration / self.dt)))

    def error(self, path: Path_, message: str) -> ConfigError:
        line = self.lines.line(path)
        where = f"{self.path.name}:{line}" if line else self.path.name
        return ConfigError(f"{where}: {_fmt_path(path)}: {message}")


def _fmt_path(path: Path_) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out or "(top level)"


def to_si(value: Any, dim: str | None) -> float:
    """A number (SI) or ``"<number> <unit>"`` in SI units; ``dim`` the expected dimension
    (a kind of :data:`UNITS`) or None. Raises ``ValueError`` with the reason (no file or
    field: :func:`parse_quantity` adds them)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(float(value)):
            raise ValueError(f"must be finite, got {value!r}")
        return float(value)
    if isinstance(value, str):
        m = _QUANTITY.match(value)
        if m:
            num, unit = float(m.group(1)), m.group(2)
            if not unit:
                return num
            if unit in UNITS:
                scale, kind = UNITS[unit]
                if dim is not None and kind != dim:
                    raise ValueError(f"expected {_UNIT_HINT[dim]}, got {value!r} ({kind})")
                return num * scale
            raise ValueError(f"unknown unit {unit!r} in {value!r}; known units: "
                             f"{', '.join(UNITS)}")
    hint = _UNIT_HINT.get(dim or "", "a number")
    raise ValueError(f"expected {hint}, got {value!r}")


def parse_quantity(value: Any, dim: str | None, cfg: NetworkConfig, path: Path_) -> float:
    """:func:`to_si` of ``value``; an error names ``cfg``'s file, the line and ``path``."""
    try:
        return to_si(value, dim)
    except ValueError as exc:
        raise cfg.error(path, str(exc)) from None


def _check_keys(cfg: NetworkConfig, table: Any, allowed: tuple[str, ...], path: Path_) -> dict:
    if not isinstance(table, dict):
        raise cfg.error(path, f"must be a table/mapping, got {type(table).__name__}")
    for k in table:
        if k not in allowed:
            raise cfg.error((*path, k), f"unknown key {k!r}; allowed: {', '.join(allowed)}")
    return table


def _int(cfg: NetworkConfig, value: Any, path: Path_, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise cfg.error(path, f"must be an integer, got {value!r}")
    if value < minimum:
        raise cfg.error(path, f"must be >= {minimum}, got {value}")
    return value


def _region_models() -> tuple[str, ...]:
    """Every model a region may name: the neuron registry's and the two sources."""
    from ..functional import registry

    return (*registry.models(), *SOURCE_MODELS)


def _choice(cfg: NetworkConfig, value: Any, allowed: tuple[str, ...], path: Path_) -> str:
    if value not in allowed:
        raise cfg.error(path, f"must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def load_config(path: str | Path) -> NetworkConfig:
    """Read and check a ``.toml``/``.yaml``/``.yml`` network file (no graph is built)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: no such file")
    if not p.is_file():
        raise ConfigError(f"{p}: not a file")
    suffix = p.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise ConfigError(f"{p}: network files must end in .toml, .yaml or .yml")
    text = _decode(p.read_bytes(), p)
    _check_depth(text, p.name)
    try:
        if suffix == ".toml":
            import tomllib

            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                m = re.search(r"line (\d+)", str(exc))
                raise ConfigError(f"{p.name}:{m.group(1) if m else '?'}: invalid TOML: "
                                  f"{exc}") from None
            lines = toml_lines(text)
        else:
            import yaml

            try:
                data, lines = yaml_load_with_lines(text, p.name)
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                line = mark.line + 1 if mark is not None else "?"
                raise ConfigError(f"{p.name}:{line}: invalid YAML: "
                                  f"{' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ConfigError(f"{p.name}: nested too deeply to read (a network file needs at "
                          f"most 4 levels)") from None
    cfg = NetworkConfig(p, data if data is not None else {}, lines)
    _check_keys(cfg, cfg.data, TOP_KEYS, ())
    sim = _check_keys(cfg, cfg.data.get("simulation", {}), SIM_KEYS, ("simulation",))
    cfg.dt = parse_quantity(sim.get("dt", 1e-4), "time", cfg, ("simulation", "dt"))
    cfg.duration = parse_quantity(sim.get("duration", 1.0), "time", cfg,
                                  ("simulation", "duration"))
    if cfg.dt <= 0:
        raise cfg.error(("simulation", "dt"), f"must be > 0, got {cfg.dt}")
    if cfg.duration < cfg.dt:
        raise cfg.error(("simulation", "duration"), f"must be at least one step (dt = "
                                                   f"{cfg.dt} s), got {cfg.duration} s")
    too_long = duration_problem(cfg.duration, cfg.dt)
    if too_long:
        raise cfg.error(("simulation", "duration"), too_long)
    cfg.seed = _int(cfg, sim.get("seed", 0), ("simulation", "seed"))
    cfg.backend = _choice(cfg, sim.get("backend", "auto"), ("auto", "engine", "torch"),
                          ("simulation", "backend"))
    cfg.dtype = _choice(cfg, sim.get("dtype", "float64"), ("float64", "float32"),
                        ("simulation", "dtype"))
    cfg.output = dict(_check_keys(cfg, cfg.data.get("output", {}), OUT_KEYS, ("output",)))
    _choice(cfg, cfg.output.setdefault("format", "npz"), ("npz", "h5"), ("output", "format"))
    if not isinstance(cfg.output.setdefault("plots", True), bool):
        raise cfg.error(("output", "plots"), "must be true or false")
    _int(cfg, cfg.output.setdefault("raster_neurons", 200), ("output", "raster_neurons"), 1)
    cfg.output["raster_window"] = _raster_window(cfg, cfg.output.get("raster_window"))
    _int(cfg, cfg.output.setdefault("weight_samples", 20), ("output", "weight_samples"))
    if cfg.output.get("weight_every") is not None:
        _int(cfg, cfg.output["weight_every"], ("output", "weight_every"), 1)
    if not isinstance(cfg.data.setdefault("modulators", {}), dict):
        raise cfg.error(("modulators",), "must be a table of named signals "
                                         "([modulators.<name>])")
    for key in ("region", "projection", "monitor"):
        v = cfg.data.setdefault(key, [])
        if not isinstance(v, list):
            raise cfg.error((key,), f"must be an array of tables ([[{key}]]), got "
                                    f"{type(v).__name__}")
    if not cfg.data["region"]:
        raise cfg.error(("region",), "the network has no [[region]]")
    names: dict[str, int] = {}
    for i, r in enumerate(cfg.data["region"]):
        _check_keys(cfg, r, REGION_KEYS, ("region", i))
        _check_name(cfg, r, ("region", i), names)
    for i, pr in enumerate(cfg.data["projection"]):
        _check_keys(cfg, pr, PROJ_KEYS, ("projection", i))
        for end in ("pre", "post"):
            if end not in pr:
                raise cfg.error(("projection", i), f"missing key {end!r}")
            if pr[end] not in names:
                raise cfg.error(("projection", i, end), f"unknown region {pr[end]!r}; regions "
                                                        f"are {list(names)}")
        pr.setdefault("name", f"{pr['pre']}-{pr['post']}")
        _check_name(cfg, pr, ("projection", i), names)
    for i, m in enumerate(cfg.data["monitor"]):
        _check_keys(cfg, m, MON_KEYS, ("monitor", i))
        if "target" not in m:
            raise cfg.error(("monitor", i), "missing key 'target'")
        if m["target"] not in names:
            raise cfg.error(("monitor", i, "target"), f"unknown region or projection "
                                                      f"{m['target']!r}; known: {list(names)}")
    return cfg


def _raster_window(cfg: NetworkConfig, raw: Any) -> float | tuple[float, float] | None:
    """``[output].raster_window``: a length (s, the end of the run) or ``[start, end]``."""
    path: Path_ = ("output", "raster_window")
    if raw is None:
        return None
    if isinstance(raw, list):
        if len(raw) != 2:
            raise cfg.error(path, f"must be a time or [start, end], got {raw!r}")
        start, end = (parse_quantity(x, "time", cfg, path) for x in raw)
        if not 0 <= start < end:
            raise cfg.error(path, f"needs 0 <= start < end, got [{start:g}, {end:g}] s")
        return start, end
    length = parse_quantity(raw, "time", cfg, path)
    if not length > 0:
        raise cfg.error(path, f"must be > 0, got {length:g} s")
    return length


def raster_window_of(cfg: NetworkConfig) -> tuple[float, float]:
    """The ``(start, end)`` (s) raster.png shows for ``cfg``'s run (after any override of
    the duration): ``[output].raster_window`` clipped to the run, or its last second."""
    run = cfg.steps * cfg.dt
    raw = cfg.output.get("raster_window")
    if raw is None or isinstance(raw, float):
        return max(0.0, run - (1.0 if raw is None else raw)), run
    start, end = raw
    if start >= run:
        raise cfg.error(("output", "raster_window"), f"starts at {start:g} s, after the end "
                                                     f"of the run ({run:g} s)")
    return start, min(end, run)


#: Most steps a run may have: step indices and times ``t · dt`` stay exact in float64.
MAX_STEPS = 2 ** 53


def duration_problem(duration: float, dt: float) -> str | None:
    """Why ``duration`` (s) cannot be run at step ``dt`` (s), or None: it must be finite,
    at least one step and at most :data:`MAX_STEPS` steps."""
    if not (math.isfinite(duration) and duration >= dt):
        return f"must be a finite time of at least one step ({dt} s), got {duration}"
    if duration / dt > MAX_STEPS:
        return (f"must be at most {MAX_STEPS} steps of dt = {dt} s ({MAX_STEPS * dt:.4g} s), "
                f"got {duration:g} s")
    return None


def _check_name(cfg: NetworkConfig, table: dict, path: Path_, names: dict[str, int]) -> None:
    name = table.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_\-:]+", name or ""):
        raise cfg.error((*path, "name"), f"must be a name of letters, digits, '_', '-', ':'; "
                                         f"got {name!r}")
    if name in names:
        raise cfg.error((*path, "name"), f"duplicate name {name!r}")
    names[name] = 1


# -- building the graph ---------------------------------------------------------------
@dataclass
class Built:
    """A graph built from a config, with what a run needs besides it."""

    graph: Any
    inputs: dict[str, Any]
    steps: int
    config: NetworkConfig
    #: ``Graph.run(modulators=..., modulation=...)`` from ``[modulators]``
    #: (:mod:`.config_plasticity`)
    modulators: dict[str, Any] = field(default_factory=dict)
    modulation: dict[str, dict[str, Any]] = field(default_factory=dict)


def _model_params(cfg: NetworkConfig, model: str, raw: Any, path: Path_) -> Any:
    from ..functional import registry

    spec = registry.get(model)
    cls = spec.parameters
    if raw is None:
        return cls()
    _check_keys(cfg, raw, tuple(f.name for f in fields(cls)), path)
    kw: dict[str, Any] = {}
    for k, v in raw.items():
        dim = spec.dimension(k)
        if isinstance(v, list):
            kw[k] = tuple(parse_quantity(x, dim, cfg, (*path, k)) if not isinstance(x, str)
                          or _QUANTITY.match(x) else x for x in v)
        elif isinstance(v, (int, float, str)) and not isinstance(v, bool) and (
                dim is not None or not isinstance(v, str)):
            kw[k] = parse_quantity(v, dim, cfg, (*path, k))
        else:
            kw[k] = v
    try:
        return cls(**kw)
    except (AuraError, TypeError, ValueError) as exc:
        raise cfg.error(path, f"invalid {model} parameters: {exc}") from None


def _init(cfg: NetworkConfig, raw: Any, path: Path_) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise cfg.error(path, "must be a table of state fields")
    out: dict[str, Any] = {}
    for k, v in raw.items():
        dim = "voltage" if k == "v" or k == "i" else None
        if isinstance(v, dict):
            _check_keys(cfg, v, ("uniform",), (*path, k))
            lo_hi = v["uniform"]
            if not isinstance(lo_hi, list) or len(lo_hi) != 2:
                raise cfg.error((*path, k, "uniform"), "must be [low, high]")
            lo, hi = (parse_quantity(x, dim, cfg, (*path, k, "uniform")) for x in lo_hi)
            if not hi > lo:
                raise cfg.error((*path, k, "uniform"), f"needs low < high, got [{lo}, {hi}]")
            out[k] = {"uniform": [lo, hi]}
        else:
            out[k] = parse_quantity(v, dim, cfg, (*path, k))
    return out


def _positions(cfg: NetworkConfig, raw: Any, n: int, seed: int, path: Path_) -> np.ndarray:
    from .connectivity import sheet_positions

    _check_keys(cfg, raw, ("layout", "width"), path)
    layout = _choice(cfg, raw.get("layout", "grid"), ("grid", "random"), (*path, "layout"))
    width = parse_quantity(raw.get("width", 1.0), "length", cfg, (*path, "width"))
    if width <= 0:
        raise cfg.error((*path, "width"), f"must be > 0, got {width}")
    return sheet_positions(n, width=width, layout=layout, seed=seed)


def _connectivity(cfg: NetworkConfig, raw: Any, n_pre: int, n_post: int, same: bool,
                  pos: tuple[np.ndarray | None, np.ndarray | None], seed: int,
                  path: Path_) -> Any:
    from . import connectivity as C

    if not isinstance(raw, dict) or "rule" not in raw:
        raise cfg.error(path, f"must be a table with a 'rule' ({', '.join(RULES)})")
    rule = _choice(cfg, raw["rule"], tuple(RULES), (*path, "rule"))
    _check_keys(cfg, raw, ("rule", *RULES[rule]), path)
    seed = _int(cfg, raw.get("seed", seed), (*path, "seed"))
    autapses = raw.get("autapses", True)
    if not isinstance(autapses, bool):
        raise cfg.error((*path, "autapses"), "must be true or false")
    if not autapses and not same:
        raise cfg.error((*path, "autapses"), "autapses = false needs pre == post")

    def prob(key: str) -> float:
        if key not in raw:
            raise cfg.error(path, f"rule {rule!r} needs {key!r}")
        v = raw[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            raise cfg.error((*path, key), f"must be a probability in [0, 1], got {v!r}")
        return float(v)

    def degree(limit: int) -> int:
        if "k" not in raw:
            raise cfg.error(path, f"rule {rule!r} needs 'k'")
        k = _int(cfg, raw["k"], (*path, "k"))
        if k > limit - (0 if autapses else 1):
            raise cfg.error((*path, "k"), f"must be at most {limit - (0 if autapses else 1)} "
                                          f"(the available partners), got {k}")
        return k

    if rule == "fixed_probability":
        return C.fixed_probability(n_pre, n_post, prob("p"), seed=seed, autapses=autapses)
    if rule == "fixed_indegree":
        return C.fixed_indegree(n_pre, n_post, degree(n_pre), seed=seed, autapses=autapses)
    if rule == "fixed_outdegree":
        return C.fixed_outdegree(n_pre, n_post, degree(n_post), seed=seed, autapses=autapses)
    if rule == "one_to_one":
        if n_pre != n_post:
            raise cfg.error((*path, "rule"), f"one_to_one needs equal sizes, got {n_pre} and "
                                             f"{n_post}")
        return C.one_to_one(n_pre)
    if rule == "all_to_all":
        return C.all_to_all(n_pre, n_post, autapses=autapses)
    if pos[0] is None or pos[1] is None:
        raise cfg.error((*path, "rule"), "distance connectivity needs 'positions' on both "
                                         "regions")
    if "sigma" not in raw:
        raise cfg.error(path, "rule 'distance' needs 'sigma'")
    sigma = parse_quantity(raw["sigma"], "length", cfg, (*path, "sigma"))
    if sigma <= 0:
        raise cfg.error((*path, "sigma"), f"must be > 0, got {sigma}")
    profile = _choice(cfg, raw.get("profile", "gaussian"), ("gaussian", "exponential"),
                      (*path, "profile"))
    periodic = raw.get("periodic")
    if periodic is not None:
        periodic = parse_quantity(periodic, "length", cfg, (*path, "periodic"))
    return C.distance(pos[0], pos[1], p_max=prob("p_max"), sigma=sigma, profile=profile,
                      periodic=periodic, seed=seed, autapses=autapses)


# -- sizing a network before it is built -----------------------------------------------
#: Bytes per neuron and per synapse of a built and running graph (state, inputs per
#: receptor, spikes, the compiled engine's copies; weight, indices and delay, the
#: engine's CSR copy and the temporaries of building it), measured on the engine with
#: float64 and rounded up: 4e6 neurons and 9e6 to 36e6 synapses cost 80 and 90 bytes.
BYTES_PER_NEURON = 144
BYTES_PER_SYNAPSE = 96
_DISTANCE_BLOCK = 1024  # rows of connectivity.distance's vectorised blocks


@dataclass(frozen=True)
class NetworkSize:
    """What a network file will take once built, estimated from the file alone.

    ``neurons`` and ``synapses`` (the expected count for random rules) sum over regions
    and projections; ``bytes`` is the estimated peak memory; ``regions`` and
    ``projections`` give the bytes of each, keyed by the field that sets them
    (``("region", i, "size")``, ``("projection", i, "connectivity")``).
    """

    neurons: int
    synapses: int
    bytes: int
    regions: dict[Path_, int]
    projections: dict[Path_, int]

    def blame(self, available: int) -> Path_:
        """The field to change when the network does not fit in ``available`` bytes:
        the largest region when the neurons alone do not fit, else the largest
        projection."""
        if self.projections and sum(self.regions.values()) <= available:
            return max(self.projections, key=self.projections.__getitem__)
        return max(self.regions, key=self.regions.__getitem__, default=("region",))


def _raw_number(raw: dict, key: str, default: float) -> float:
    v = raw.get(key, default)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and \
        math.isfinite(v) else default


def _expected_synapses(raw: Any, n_pre: int, n_post: int, same: bool, width: float) -> float:
    """Expected synapses of a ``connectivity`` table (0 when it is invalid: building the
    graph reports that)."""
    if not isinstance(raw, dict):
        return 0.0
    rule = raw.get("rule")
    pairs = float(n_pre) * (n_post - (1 if same and raw.get("autapses") is False else 0))
    if rule == "fixed_probability":
        return min(1.0, max(0.0, _raw_number(raw, "p", 0.0))) * pairs
    if rule == "fixed_indegree":
        return max(0.0, _raw_number(raw, "k", 0.0)) * n_post
    if rule == "fixed_outdegree":
        return max(0.0, _raw_number(raw, "k", 0.0)) * n_pre
    if rule == "one_to_one":
        return float(min(n_pre, n_post))
    if rule == "all_to_all":
        return pairs
    if rule == "distance":
        p_max = min(1.0, max(0.0, _raw_number(raw, "p_max", 0.0)))
        try:
            sigma = abs(parse_quantity(raw.get("sigma", 0.0), "length",
                                       NetworkConfig(Path("."), {}, LineMap({})), ()))
        except ConfigError:
            sigma = 0.0
        # a gaussian or exponential profile integrates to 2 pi sigma^2 over the sheet
        return p_max * pairs * min(1.0, 2 * math.pi * sigma ** 2 / width ** 2)
    return 0.0


def network_size(cfg: NetworkConfig) -> NetworkSize:
    """Estimate the neurons, synapses and memory of ``cfg``'s network without building it.

    Per region ``BYTES_PER_NEURON · size`` (halved state for float32 is ignored: the
    estimate errs high), plus ``16 · T · size`` bytes for an input file's values
    (read as float64 and converted once); per projection ``BYTES_PER_SYNAPSE ·
    E[synapses]`` with ``E`` the rule's expected count (``p · n_pre · n_post``,
    ``k · n``, ...; ``distance``: ``p_max · n_pre · n_post · min(1, 2πσ²/w²)`` on a
    sheet of width ``w``) plus the distance rule's block of ``1024 · n_post`` pair
    distances (48 bytes each). Sizes are checked (``>= 1``) as :func:`build_graph`
    checks them.
    """
    sizes: dict[str, int] = {}
    widths: dict[str, float] = {}
    regions: dict[Path_, int] = {}
    for i, r in enumerate(cfg.data["region"]):
        path: Path_ = ("region", i)
        if "size" not in r:
            raise cfg.error(path, "missing key 'size'")
        n = _int(cfg, r["size"], (*path, "size"), 1)
        sizes[r["name"]] = n
        pos = r.get("positions")
        widths[r["name"]] = _raw_number(pos, "width", 1.0) if isinstance(pos, dict) else 1.0
        b = BYTES_PER_NEURON * n
        if r.get("model") == "input" and isinstance(r.get("file"), str):
            # an unreadable file is reported by building, with its line; not here
            with contextlib.suppress(OSError, ValueError):
                arr = np.load(cfg.path.parent / r["file"], mmap_mode="r", allow_pickle=False)
                b += 16 * int(np.prod(arr.shape, dtype=np.float64))
        regions[(*path, "size")] = b
    projections: dict[Path_, int] = {}
    synapses = 0.0
    for i, pr in enumerate(cfg.data["projection"]):
        pre, post = sizes.get(pr["pre"]), sizes.get(pr["post"])
        if pre is None or post is None:
            continue
        raw = pr.get("connectivity")
        k = _expected_synapses(raw, pre, post, pr["pre"] == pr["post"],
                               max(widths.get(pr["post"], 1.0), 1e-300))
        synapses += k
        b = BYTES_PER_SYNAPSE * k
        if isinstance(raw, dict) and raw.get("rule") == "distance":
            b += 48.0 * min(pre, _DISTANCE_BLOCK) * post
        projections[("projection", i, "connectivity")] = int(b)
    total = sum(regions.values()) + sum(projections.values())
    return NetworkSize(sum(sizes.values()), int(round(synapses)), int(total), regions,
                       projections)


def available_memory() -> int | None:
    """Bytes of memory this process may still take: the smaller of the system's
    available memory (``MemAvailable`` in ``/proc/meminfo``, else ``sysconf``) and the
    room left under a cgroup v2 limit; None when neither can be read."""
    import os

    found: list[int] = []
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError, AttributeError):
            pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
            found.append(max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def human_bytes(n: float) -> str:
    """``n`` bytes with a decimal prefix and three digits: ``8 GB``, ``144 TB``."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000:
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"


def check_fits(cfg: NetworkConfig, available: int | None = None) -> NetworkSize:
    """Refuse a network that would not fit in memory, before anything is allocated.

    ``available`` (bytes) defaults to :func:`available_memory`; with neither, nothing
    is refused. Raises a :class:`ConfigError` at the field to change
    (:meth:`NetworkSize.blame`) giving the estimate: neurons, synapses, bytes, and the
    bytes available.
    """
    size = network_size(cfg)
    if available is None:
        available = available_memory()
    if available is not None and size.bytes > available:
        raise cfg.error(size.blame(available), (
            f"the network does not fit in memory: {size.neurons} neurons and {size.synapses} "
            f"synapses need about {size.bytes} bytes ({human_bytes(size.bytes)}), more than "
            f"the {available} bytes ({human_bytes(available)}) available"))
    return size


def build_graph(cfg: NetworkConfig) -> Built:
    """Build the :class:`~aura_snn.graph.Graph` a config describes (imports torch).

    The network is sized first (:func:`check_fits`): one that would not fit in memory
    is refused before anything is allocated.
    """
    check_fits(cfg)
    import torch

    from .graph import Graph
    from .projection import Projection
    from .regions import InputRegion, PoissonRegion, SpikingRegion, default_seed

    g = Graph(dt=cfg.dt, seed=cfg.seed)
    g.to(torch.float64 if cfg.dtype == "float64" else torch.float32)
    inputs: dict[str, Any] = {}
    positions: dict[str, np.ndarray | None] = {}
    sizes: dict[str, int] = {}
    for i, r in enumerate(cfg.data["region"]):
        path: Path_ = ("region", i)
        name = r["name"]
        if "size" not in r:
            raise cfg.error(path, "missing key 'size'")
        size = _int(cfg, r["size"], (*path, "size"), 1)
        model = _choice(cfg, r.get("model", "cuba_refractory"), _region_models(),
                        (*path, "model"))
        seed = _int(cfg, r.get("seed", default_seed(cfg.seed, name)), (*path, "seed"))
        allowed = {"poisson": ("rate",), "input": ("file",)}.get(model, ("params", "init"))
        for k in ("params", "init", "rate", "file"):
            if k in r and k not in allowed:
                raise cfg.error((*path, k), f"model {model!r} takes no {k!r} (it takes "
                                            f"{', '.join(allowed)})")
        try:
            if model == "poisson":
                if "rate" not in r:
                    raise cfg.error(path, "a poisson region needs 'rate'")
                rate = r["rate"]
                rates = [parse_quantity(x, "rate", cfg, (*path, "rate")) for x in rate] \
                    if isinstance(rate, list) else parse_quantity(rate, "rate", cfg,
                                                                  (*path, "rate"))
                if np.any(np.asarray(rates) < 0):
                    raise cfg.error((*path, "rate"), "must be >= 0 Hz")
                region = PoissonRegion(name, size, torch.as_tensor(rates, dtype=torch.float64),
                                       seed=seed)
            elif model == "input":
                if "file" not in r:
                    raise cfg.error(path, "an input region needs 'file' (.npy)")
                fpath = (cfg.path.parent / str(r["file"])).resolve()
                try:
                    arr = np.load(fpath, allow_pickle=False)
                except (OSError, ValueError) as exc:
                    raise cfg.error((*path, "file"), f"cannot read {fpath}: {exc}") from None
                if arr.ndim == 2:
                    arr = arr[:, None, :]
                if arr.ndim != 3 or arr.shape[2] != size or arr.shape[1] != 1:
                    raise cfg.error((*path, "file"), f"must hold [T, {size}] or [T, 1, {size}] "
                                                     f"values, got shape {arr.shape}")
                if arr.shape[0] < cfg.steps:
                    raise cfg.error((*path, "file"), f"has {arr.shape[0]} steps, the run needs "
                                                     f"{cfg.steps}")
                try:
                    arr = np.ascontiguousarray(arr, dtype=np.float64)
                except (TypeError, ValueError):
                    raise cfg.error((*path, "file"), f"{r['file']} must hold numbers, got "
                                                     f"dtype {arr.dtype}") from None
                bad = ~np.isfinite(arr)
                if bad.any():
                    t_bad, _, i_bad = np.unravel_index(int(np.argmax(bad)), arr.shape)
                    k = int(bad.sum())
                    raise cfg.error((*path, "file"), (
                        f"{r['file']} holds {k} NaN or infinite value{'s' if k > 1 else ''} "
                        f"(the first at step {t_bad}, neuron {i_bad})"))
                del bad
                inputs[name] = torch.as_tensor(arr)
                # spikes only if the file holds 0/1 (real values are currents: MACs, not ACs)
                region = InputRegion(name, size, spiking=bool(np.isin(arr, (0.0, 1.0)).all()))
            else:
                params = _model_params(cfg, model, r.get("params"), (*path, "params"))
                init = _init(cfg, r.get("init"), (*path, "init"))
                try:
                    params.validate(cfg.dt)
                except (AuraError, ValueError) as exc:
                    raise cfg.error((*path, "params"), str(exc)) from None
                region = SpikingRegion(name, size, model, params, init=init, seed=seed)
        except ConfigError:
            raise
        except (AuraError, ValueError, TypeError) as exc:
            raise cfg.error(path, str(exc)) from None
        positions[name] = _positions(cfg, r["positions"], size, seed, (*path, "positions")) \
            if "positions" in r else None
        region.positions = positions[name]
        sizes[name] = size
        g.add_region(region)
    for i, pr in enumerate(cfg.data["projection"]):
        path = ("projection", i)
        pre, post = pr["pre"], pr["post"]
        if pre not in sizes or post not in sizes:
            raise cfg.error((*path, "pre" if pre not in sizes else "post"),
                            "projections connect regions (not projections)")
        seed = _int(cfg, pr.get("seed", default_seed(cfg.seed, pr["name"])), (*path, "seed"))
        if "connectivity" not in pr:
            raise cfg.error(path, "missing key 'connectivity'")
        conn = _connectivity(cfg, pr["connectivity"], sizes[pre], sizes[post], pre == post,
                             (positions[pre], positions[post]), seed, (*path, "connectivity"))
        if "weight" not in pr:
            raise cfg.error(path, "missing key 'weight'")
        weight = pr["weight"]
        if isinstance(weight, dict):
            _check_keys(cfg, weight, ("dist", "mean", "std", "low", "high", "mu", "sigma"),
                        (*path, "weight"))
            weight = {k: (v if k in ("dist", "mu", "sigma") else
                          parse_quantity(v, "voltage", cfg, (*path, "weight", k)))
                      for k, v in weight.items()}
        else:
            weight = parse_quantity(weight, "voltage", cfg, (*path, "weight"))
        delay_s = parse_quantity(pr.get("delay", 0.0), "time", cfg, (*path, "delay"))
        steps_d = delay_s / cfg.dt
        if delay_s < 0 or abs(steps_d - round(steps_d)) > 1e-6 * max(1.0, steps_d):
            raise cfg.error((*path, "delay"), f"must be a non-negative multiple of dt "
                                              f"({cfg.dt} s), got {delay_s} s")
        sign = pr.get("sign")
        if sign is not None:
            _choice(cfg, sign, ("exc", "inh"), (*path, "sign"))
        try:
            p = Projection(pr["name"], pre, post, weight, connectivity=conn,
                           delay=int(round(steps_d)), sign=sign, receptor=pr.get("receptor"),
                           seed=seed)
            g.add_projection(p)
        except (AuraError, ValueError, TypeError) as exc:
            key = "receptor" if "receptor" in str(exc) else ("sign" if "sign" in str(exc)
                                                              else "weight")
            raise cfg.error((*path, key), str(exc)) from None
    from .config_plasticity import attach_plasticity, modulator_inputs

    attach_plasticity(cfg, g)
    modulators, modulation = modulator_inputs(cfg, g)
    return Built(g, inputs, cfg.steps, cfg, modulators, modulation)


def monitor_specs(cfg: NetworkConfig, graph: Any = None) -> list[dict[str, Any]]:
    """The ``[[monitor]]`` tables, checked and normalised; with the built ``graph``,
    ``neurons`` are also checked against the target's size (neurons of a region,
    synapses of a projection's ``weights``, its pre or post neurons for traces)."""
    out = []
    for i, m in enumerate(cfg.data["monitor"]):
        path: Path_ = ("monitor", i)
        spec = {"target": m["target"], "variable": m.get("variable", "spikes"),
                "every": _int(cfg, m.get("every", 1), (*path, "every"), 1), "neurons": None}
        if "neurons" in m:
            nr = m["neurons"]
            if not isinstance(nr, list) or not all(isinstance(x, int) and not
                                                   isinstance(x, bool) and x >= 0 for x in nr):
                raise cfg.error((*path, "neurons"), "must be a list of neuron indices >= 0")
            spec["neurons"] = nr
            if graph is not None and nr:
                _check_monitor_range(cfg, graph, spec, (*path, "neurons"))
        out.append((spec, path))
    return out  # type: ignore[return-value]


def _check_monitor_range(cfg: NetworkConfig, graph: Any, spec: dict, path: Path_) -> None:
    target, variable, top = spec["target"], spec["variable"], max(spec["neurons"])
    if target in graph.regions:
        n, what = graph.regions[target].size, f"region {target!r} of {{}} neurons"
        unit = "neuron"
    elif target in graph.projections:
        p = graph.projections[target]
        n, unit = {"pre_trace": (p.n_pre, "neuron"), "post_trace": (p.n_post, "neuron")}.get(
            variable, (p.nnz, "synapse"))
        what = (f"projection {target!r} of {{}} synapses" if unit == "synapse" else
                f"the {variable} of projection {target!r} ({{}} neurons)")
    else:
        return
    if top >= n:
        raise cfg.error(path, f"{unit} {top} is out of range for {what.format(n)}")


def params_dict(p: Any) -> dict[str, Any]:
    """A parameter dataclass as plain values (for summaries)."""
    if not is_dataclass(p):
        return {}
    out = {}
    for f in fields(p):
        v = getattr(p, f.name)
        out[f.name] = list(v) if isinstance(v, tuple) else (float(v) if hasattr(v, "item")
                                                            else v)
    return out


__all__ = ["MAX_DEPTH", "MAX_STEPS", "Built", "ConfigError", "LineMap", "NetworkConfig",
           "NetworkSize", "available_memory", "build_graph", "check_fits", "duration_problem",
           "human_bytes", "load_config", "monitor_specs", "network_size", "parse_quantity",
           "raster_window_of", "to_si",
           "toml_lines", "yaml_load_with_lines"]
