"""State of a training run that is not a module's, as tensors and JSON, and the checks
that come before a checkpoint is applied.

* The optimizer's ``state_dict`` splits into tensors (safetensors) and a JSON structure
  (param groups, scalars): :func:`flatten_optimizer` / :func:`unflatten_optimizer`.
* Every RNG a training step may draw from (torch CPU and the process's CUDA device,
  numpy's global MT19937, python's ``random``) as fixed-size tensors, so the ranks of a
  distributed run can gather theirs into one file: :func:`rng_state` /
  :func:`set_rng_state`.
* :func:`check_restorable`: the saved model and training configs against the live ones
  (the first differing field named), every tensor name, shape and dtype, and the
  optimizer's groups and moment shapes, all before anything is changed; a failed check
  leaves model and optimizer as they were.
"""

from __future__ import annotations

import dataclasses
import random
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from aura_snn.errors import ParameterError, StateMismatchError

from .checkpoint import Checkpoint
from .ddp import DistContext
from .train_config import RESUME_MAY_CHANGE, TrainConfig


# -- optimizer state as tensors + JSON -----------------------------------------------
def flatten_optimizer(sd: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``optimizer.state_dict()`` into tensors ``state.<param>.<key>`` and a JSON
    structure holding the param groups and the non-tensor values."""
    tensors: dict[str, torch.Tensor] = {}
    state: dict[str, dict[str, Any]] = {}
    for pid, entry in sd["state"].items():
        state[str(pid)] = {}
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{pid}.{key}"] = value.detach().cpu().clone().contiguous()
                state[str(pid)][key] = {"tensor": f"state.{pid}.{key}"}
            else:
                state[str(pid)][key] = {"value": value}
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
              for g in sd["param_groups"]]
    return tensors, {"state": state, "param_groups": groups}


def unflatten_optimizer(tensors: Mapping[str, torch.Tensor], structure: Mapping[str, Any],
                        like: Mapping[str, Any]) -> dict[str, Any]:
    """Rebuild an optimizer ``state_dict`` from :func:`flatten_optimizer`'s parts; tuples
    come back where the live optimizer ``like`` has tuples (``betas``)."""
    state: dict[int, dict[str, Any]] = {}
    for pid, entry in structure["state"].items():
        state[int(pid)] = {k: tensors[v["tensor"]] if "tensor" in v else v["value"]
                           for k, v in entry.items()}
    groups = []
    for g, live in zip(structure["param_groups"], like["param_groups"], strict=True):
        groups.append({k: (tuple(v) if isinstance(live.get(k), tuple) else v)
                       for k, v in g.items()})
    return {"state": state, "param_groups": groups}


# -- RNG states as tensors ------------------------------------------------------------
def rng_state(device: torch.device | None = None) -> dict[str, torch.Tensor]:
    """This process's RNG states as fixed-size CPU tensors: torch CPU (and the CUDA
    generator of ``device``), numpy's global MT19937 and python's ``random``."""
    out = {"torch_cpu": torch.get_rng_state()}
    if device is not None and device.type == "cuda":
        out["torch_cuda"] = torch.cuda.get_rng_state(device)
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    if kind != "MT19937":
        raise ParameterError(f"numpy's global generator is {kind!r}; only MT19937 is saved")
    out["numpy_keys"] = torch.from_numpy(np.asarray(keys, dtype=np.int64).copy())
    out["numpy_pos"] = torch.tensor([pos, has_gauss], dtype=torch.int64)
    out["numpy_gauss"] = torch.tensor([cached], dtype=torch.float64)
    version, internal, gauss_next = random.getstate()
    out["python_state"] = torch.tensor([version, *internal], dtype=torch.int64)
    out["python_gauss"] = torch.tensor([gauss_next is not None, gauss_next or 0.0],
                                       dtype=torch.float64)
    return out


def set_rng_state(st: Mapping[str, torch.Tensor], device: torch.device | None = None) -> None:
    """Restore the states :func:`rng_state` returned."""
    torch.set_rng_state(st["torch_cpu"])
    if device is not None and device.type == "cuda" and "torch_cuda" in st:
        torch.cuda.set_rng_state(st["torch_cuda"], device)
    pos, has_gauss = (int(v) for v in st["numpy_pos"])
    np.random.set_state(("MT19937", st["numpy_keys"].numpy().astype(np.uint32), pos,
                         has_gauss, float(st["numpy_gauss"][0])))
    py = [int(v) for v in st["python_state"]]
    has, g = st["python_gauss"].tolist()
    random.setstate((py[0], tuple(py[1:]), g if has else None))


# -- checks before a resume ------------------------------------------------------------
def model_config_dict(model: nn.Module) -> dict[str, Any]:
    """``model.config`` as a dict (a dataclass or an object with ``to_dict``), or ``{}``."""
    cfg = getattr(model, "config", None)
    if cfg is None:
        return {}
    if hasattr(cfg, "to_dict"):
        return dict(cfg.to_dict())
    if dataclasses.is_dataclass(cfg):
        return dataclasses.asdict(cfg)
    return {}


def _compare(saved: Mapping[str, Any], now: Mapping[str, Any], what: str,
             skip: frozenset[str] = frozenset()) -> None:
    for key in sorted(set(saved) | set(now)):
        if key in skip:
            continue
        a, b = saved.get(key, "<absent>"), now.get(key, "<absent>")
        if a != b and not (isinstance(a, list) and tuple(a) == b):
            raise StateMismatchError(f"checkpoint is from a different config: {what}.{key} "
                                     f"is {a!r} there and {b!r} here")


def check_restorable(ck_: Checkpoint, model: nn.Module, opt: torch.optim.Optimizer,
                      cfg: TrainConfig) -> dict[str, Any]:
    """Compare configs, tensor names, shapes and dtypes; returns the optimizer state
    dict to load. Raises before anything is changed."""
    _compare(ck_.state.get("model_config", {}), model_config_dict(model), "model")
    saved_train = dict(ck_.state.get("train_config", {}))
    if saved_train:  # added after the first checkpoints were written: absent means off
        saved_train.setdefault("spike_rate_weight", 0.0)
    _compare(saved_train, cfg.to_dict(), "train", RESUME_MAY_CHANGE)
    live = model.state_dict()
    for name in [*live, *(n for n in ck_.model if n not in live)]:  # model order
        if name not in ck_.model or name not in live:
            where = "the checkpoint" if name not in ck_.model else "this model"
            raise StateMismatchError(f"tensor {name!r} is missing from {where}")
        a, b = ck_.model[name], live[name]
        if a.shape != b.shape or a.dtype != b.dtype:
            raise StateMismatchError(f"tensor {name!r} is {a.dtype} {tuple(a.shape)} in the "
                                     f"checkpoint and {b.dtype} {tuple(b.shape)} here")
    saved_groups = [len(g.get("params", ())) for g in ck_.optimizer["param_groups"]]
    if saved_groups != [len(g["params"]) for g in opt.param_groups]:
        raise StateMismatchError(f"optimizer parameter groups hold {saved_groups} tensors in "
                                 f"the checkpoint and "
                                 f"{[len(g['params']) for g in opt.param_groups]} here")
    sd = unflatten_optimizer(ck_.optimizer["tensors"], ck_.optimizer, opt.state_dict())
    params = [p for g in opt.param_groups for p in g["params"]]
    for pid, entry in sd["state"].items():
        if not 0 <= pid < len(params):
            raise StateMismatchError(f"optimizer state names parameter {pid}; this model's "
                                     f"optimizer has {len(params)}")
        for key, v in entry.items():
            if isinstance(v, torch.Tensor) and v.ndim and v.shape != params[pid].shape:
                raise StateMismatchError(f"optimizer state {key!r} of parameter {pid} has "
                                         f"shape {tuple(v.shape)}, the parameter "
                                         f"{tuple(params[pid].shape)}")
    return sd


def rng_for(ck_: Checkpoint, ctx: DistContext) -> dict[str, torch.Tensor] | None:
    """This rank's saved RNG states, or ``None`` (with a warning: the resume is then not
    bit-exact) when the checkpoint was written by another number of processes."""
    pre = f"rank{ctx.rank}."
    mine = {k[len(pre):]: v for k, v in ck_.rng.items() if k.startswith(pre)}
    if ck_.state.get("world_size") != ctx.world_size or not mine:
        warnings.warn(f"checkpoint was written by {ck_.state.get('world_size')} process(es), "
                      f"this run has {ctx.world_size}: RNG streams are reseeded, so the "
                      f"resumed run is not bit-identical to a straight one", stacklevel=3)
        return None
    return mine


__all__ = ["check_restorable", "flatten_optimizer", "model_config_dict", "rng_for",
           "rng_state", "set_rng_state", "unflatten_optimizer"]
