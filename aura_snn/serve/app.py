"""A running service: the brain actor on Ray, the HTTP endpoint, periodic snapshots.

:class:`Service` checks the ``--state`` folder against the network file before Ray is
started (a folder of another network is refused and left as it is), starts (or joins)
Ray (:func:`aura_snn.graph.distributed.cluster.connect`), starts the
:class:`~aura_snn.serve.brain.Brain` actor, serves HTTP on ``127.0.0.1:port`` in a
thread, and with ``snapshot_every`` saves a snapshot every that many seconds when
anything changed. :meth:`Service.stop` stops taking requests, saves a final snapshot
(complete, or discarded whole if interrupted: :mod:`aura_snn.serve.state_dir`), kills
the actor and shuts down the Ray cluster this service started.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from ..errors import ParameterError


class Service:
    """``aura-snn serve`` as a library object (module docstring).

    Args:
        network_file: the served network file (:mod:`aura_snn.serve.network`).
        state_dir: the ``--state`` folder.
        port: TCP port on 127.0.0.1 (0: a free one, see :attr:`address`).
        snapshot_every: seconds between periodic snapshots (``None``: only on stop).
        max_buffer: steps of output kept per region.
        address: a Ray cluster to join (default: this process's Ray, else a local one).
    """

    def __init__(self, network_file: str | Path, state_dir: str | Path, *, port: int = 0,
                 snapshot_every: float | None = None, max_buffer: int = 20000,
                 address: str | None = None) -> None:
        from .network import file_identity
        from .state_dir import check_network

        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ParameterError(f"port must be an integer in [0, 65535], got {port!r}")
        if snapshot_every is not None and not snapshot_every > 0:
            raise ParameterError(f"snapshot_every must be > 0 seconds, got "
                                 f"{snapshot_every!r}")
        self.network_file, self.state_dir = Path(network_file), Path(state_dir)
        path, digest = file_identity(self.network_file)
        check_network(self.state_dir, path, digest)
        self.port, self.snapshot_every = port, snapshot_every
        self.max_buffer, self.ray_address = max_buffer, address
        self._stop = threading.Event()
        self._started_ray = False
        self._ray: Any = None
        self.brain: Any = None
        self.server: Any = None
        self._threads: list[threading.Thread] = []

    def call(self, method: str, *args: Any) -> Any:
        """Call a method of the brain actor and wait for its result (its errors raised
        as themselves)."""
        ray = self._ray
        try:
            return ray.get(getattr(self.brain, method).remote(*args))
        except ray.exceptions.RayTaskError as exc:
            raise (exc.cause if isinstance(exc.cause, Exception) else exc) from None

    def start(self) -> Service:
        """Start Ray, the brain actor, HTTP and the snapshot thread."""
        from ..graph.distributed.cluster import connect, require_ray
        from . import http
        from .brain import Brain

        self._ray = ray = require_ray()
        self._started_ray = connect(ray, self.ray_address)
        try:
            actor = ray.remote(Brain).options(max_restarts=0)
            self.brain = actor.remote(str(self.network_file.resolve()),
                                      str(self.state_dir.resolve()),
                                      max_buffer=self.max_buffer)
            self.info = self.call("describe")
            self.server = http.make_server(self.call, self.port)
        except BaseException:
            self._shutdown_ray()
            raise
        self.port = self.server.server_address[1]
        self._threads.append(http.start(self.server))
        if self.snapshot_every is not None:
            t = threading.Thread(target=self._snapshots, name="aura-snn-serve-snapshots",
                                 daemon=True)
            t.start()
            self._threads.append(t)
        return self

    @property
    def address(self) -> str:
        """``"127.0.0.1:port"`` of the HTTP endpoint."""
        return f"127.0.0.1:{self.port}"

    def _snapshots(self) -> None:
        while not self._stop.wait(self.snapshot_every):
            self.call("snapshot", False)

    def wait(self) -> None:
        """Block until :meth:`request_stop` (a signal handler calls it)."""
        while not self._stop.wait(0.5):
            pass

    def request_stop(self, *_: Any) -> None:
        """Ask :meth:`wait` to return (safe in a signal handler)."""
        self._stop.set()

    def stop(self) -> dict[str, Any] | None:
        """Stop HTTP, save the final snapshot, kill the actor, stop the Ray cluster this
        service started; returns the final snapshot's report."""
        self._stop.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        for t in self._threads:
            t.join(timeout=30)
        final = None
        try:
            if self.brain is not None:
                final = self.call("snapshot", False)
        finally:
            self._shutdown_ray()
        return final

    def _shutdown_ray(self) -> None:
        ray = self._ray
        if ray is None:
            return
        if self.brain is not None:
            ray.kill(self.brain)
            self.brain = None
        if self._started_ray and ray.is_initialized():
            ray.shutdown()

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


__all__ = ["Service"]
