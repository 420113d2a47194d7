"""Connecting to Ray and keeping worker actors between runs.

* :func:`require_ray` imports Ray or raises :class:`~aura_snn.errors.MissingExtraError`
  naming the ``distributed`` extra.
* :func:`connect`: with no address, the Ray session this process already has, else a
  new local cluster (embedded: nothing to set up; the run shuts it down again); with an
  address (``"host:port"`` of a cluster's head, or ``"ray://host:port"`` of its client
  server), that cluster, after a plain TCP check that answers quickly and by name
  when it cannot be reached (Ray itself would retry for a long time).
* Actors have a second concurrency group, ``exchange`` (one thread), for the messages
  workers send each other while their default group runs windows
  (:mod:`.worker`).
* Actors cost a process start and an import of torch (seconds each), so the actors of
  a run stay in a pool for the next run of the same Ray session; :func:`release_workers`
  kills them (``ray.shutdown()`` does too). A run that fails releases them.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

from ..._checks import require
from ...errors import ParameterError

CONNECT_TIMEOUT_S = 3.0

_pool: dict[str, Any] = {"job": None, "actors": [], "cls": None}


def require_ray() -> Any:
    """The ``ray`` module (lazy import, error naming the extra)."""
    return require("ray", "distributed")


def _host_port(address: str) -> tuple[str, int] | None:
    rest = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def check_address(address: str) -> None:
    """Raise :class:`~aura_snn.errors.ParameterError` when ``address`` is malformed or
    nothing listens there."""
    if not isinstance(address, str) or not address:
        raise ParameterError(f"address must be a Ray address such as 'ray://host:10001' or "
                             f"'host:6379', got {address!r}")
    if address == "auto":
        return
    hp = _host_port(address)
    if hp is None:
        raise ParameterError(f"address={address!r} is not 'host:port', 'ray://host:port' or "
                             f"'auto'")
    try:
        with socket.create_connection(hp, timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ParameterError(f"address={address!r}: cannot reach a Ray cluster at "
                             f"{hp[0]}:{hp[1]} ({exc.strerror or exc})") from None


def connect(ray: Any, address: str | None) -> bool:
    """Make sure this process is connected to Ray (module docstring); returns whether it
    started a local cluster (which the caller then shuts down)."""
    if address is not None:
        check_address(address)
        if ray.is_initialized():
            raise ParameterError(f"address={address!r}: this process is already connected "
                                 f"to a Ray cluster; call ray.shutdown() first, or pass "
                                 f"address=None to use that one")
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except Exception as exc:  # noqa: BLE001 - Ray raises several kinds
            raise ParameterError(f"address={address!r}: could not connect to Ray "
                                 f"({type(exc).__name__}: {exc})") from None
        return False
    if ray.is_initialized():
        return False
    with _sigint_blocked():
        ray.init(include_dashboard=False, log_to_driver=False)
    return True


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Block SIGINT while the local cluster starts (main thread only), so its processes
    (GCS, raylet, the workers they start) inherit it blocked: a terminal's Ctrl+C, sent
    to the whole process group, then reaches only this process, whose run stops cleanly
    (snapshot in progress discarded, actors stopped, :func:`ray.shutdown`) instead of
    racing the cluster's processes dying under it. A Ctrl+C during the start is
    delivered when it ends."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def workers(ray: Any, n: int, actor_class: type) -> list[Any]:
    """``n`` actors of ``actor_class`` from the pool of this Ray session (module
    docstring), started where missing."""
    job = ray.get_runtime_context().get_job_id()
    if _pool["job"] != job or _pool["cls"] is not actor_class:
        _pool.update(job=job, actors=[], cls=actor_class)
    remote = ray.remote(concurrency_groups={"exchange": 1})(actor_class)
    while len(_pool["actors"]) < n:
        _pool["actors"].append(remote.remote())
    return list(_pool["actors"][:n])


def release_workers() -> None:
    """Kill the pooled worker actors of this process (if Ray is still up)."""
    actors, _pool["actors"], _pool["job"] = _pool["actors"], [], None
    if not actors:
        return
    ray = require_ray()
    if ray.is_initialized():
        for a in actors:
            try:
                ray.kill(a)
            except Exception:  # noqa: BLE001, S110 - already gone
                pass


__all__ = ["check_address", "connect", "release_workers", "require_ray", "workers"]
