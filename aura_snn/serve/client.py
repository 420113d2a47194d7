"""The Python client of a service (standard library HTTP and numpy; no Ray, no torch).

    client = Client("127.0.0.1:8765")
    client.push("sensory", spikes)          # [T, size] or [size]
    out = client.read("motor")              # steps since this client's last read
    out.spikes, out.rate_hz, out.start, out.stop

:meth:`Client.read` keeps a cursor per region, so each call returns the steps published
since the previous one (``since=`` reads from any step still buffered).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, NamedTuple

import numpy as np

from ..errors import AuraError, ParameterError

TIMEOUT_S = 60.0


class ServiceError(AuraError, ValueError):
    """The service refused a request (its message names the region, shape or value)."""


class ServiceUnreachableError(AuraError, ConnectionError):
    """Nothing answers at the service address."""


class Output(NamedTuple):
    """Steps ``[start, stop)`` of one output region.

    Attributes:
        spikes: ``[stop - start, size]`` 0/1 (``None`` for a region whose output is not
            0/1; then ``values`` holds it).
        rate_hz: per-neuron rate over the steps (Hz), or ``None``.
        values: ``[stop - start, size]`` float64 or ``None``.
    """

    region: str
    start: int
    stop: int
    spikes: np.ndarray | None
    rate_hz: np.ndarray | None
    values: np.ndarray | None


def _base(address: str) -> str:
    if not isinstance(address, str) or not address:
        raise ParameterError(f"address must be 'host:port' or 'http://host:port', got "
                             f"{address!r}")
    base = address if address.startswith(("http://", "https://")) else f"http://{address}"
    return base.rstrip("/")


class Client:
    """Talks to ``aura-snn serve`` at ``address`` (``"host:port"`` or ``"http://..."``)."""

    def __init__(self, address: str, *, timeout: float = TIMEOUT_S) -> None:
        self.address = address
        self.base = _base(address)
        self.timeout = float(timeout)
        self.cursor: dict[str, int] = {}

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.base}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            try:
                msg = json.loads(exc.read()).get("error", exc.reason)
            except (json.JSONDecodeError, AttributeError):
                msg = exc.reason
            raise ServiceError(f"{self.address}: {msg}") from None
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServiceUnreachableError(f"address={self.address!r}: no aura-snn service "
                                          f"answers there ({reason})") from None

    def status(self) -> dict[str, Any]:
        """The service's inputs, outputs, ``dt``, step reached and ``--state`` folder."""
        return self._request("GET", "/status")

    def push(self, region: str, data: Any) -> dict[str, int]:
        """Append ``data`` (``[T, size]`` or ``[size]``) to input ``region``'s stream."""
        arr = np.asarray(data, dtype=np.float64)
        return self._request("POST", f"/push/{region}", {"data": arr.tolist()})

    def read(self, region: str, since: int | None = None) -> Output:
        """Output of ``region`` from ``since`` (default: this client's cursor) to now."""
        start = self.cursor.get(region, 0) if since is None else since
        body = self._request("GET", f"/output/{region}?since={int(start)}")
        k, n = body["stop"] - body["start"], body["size"]
        spikes = rate = values = None
        if "events" in body:
            spikes = np.zeros((k, n), dtype=np.uint8)
            t = np.asarray(body["events"]["t"], dtype=np.int64) - body["start"]
            spikes[t, np.asarray(body["events"]["i"], dtype=np.int64)] = 1
            rate = np.asarray(body["rate_hz"], dtype=np.float64)
        else:
            values = np.asarray(body["values"], dtype=np.float64).reshape(k, n)
        self.cursor[region] = body["stop"]
        return Output(region, body["start"], body["stop"], spikes, rate, values)

    def snapshot(self) -> dict[str, Any]:
        """Ask the service to save a snapshot now."""
        return self._request("POST", "/snapshot", {})


__all__ = ["Client", "Output", "ServiceError", "ServiceUnreachableError"]
