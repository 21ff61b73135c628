"""The second listener of ``simgate run | serve`` when ``[http] metrics_listen`` is set.

/metrics has no access control of its own and tells about the queue, lines and push
receivers (issue 14 item 16): served on an address of its own (a loopback or management
network), it leaves the API address, where every client may connect.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import uvicorn

from simgate.cli.http_guard import guarded_protocol
from simgate.runtime import Runtime


class MetricsServer(uvicorn.Server):
    """A uvicorn server that leaves the signals to the API's server, which stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def metrics_server(runtime: Runtime) -> MetricsServer | None:
    """The /metrics server for ``[http] metrics_listen``; None when /metrics stays on the API
    address. The caller runs ``serve()`` beside the API's and sets ``should_exit`` after."""
    http = runtime.settings.http
    address = http.metrics_address
    if address is None:
        return None
    host, port = address
    cfg = uvicorn.Config(
        runtime.metrics_app(),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
        http=guarded_protocol(http),
    )
    return MetricsServer(cfg)
