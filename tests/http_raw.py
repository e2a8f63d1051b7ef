"""A raw HTTP GET with a chosen `Host:` header (the dashboard answers only loopback names with
its port: tests send the names a rebinding attacker's page would)."""

from __future__ import annotations

import http.client


def get_with_host(port: int, path: str, host: str, timeout: float = 30) -> tuple[int, bytes]:
    """GET `path` from 127.0.0.1:`port` sending `host` as the Host header; (status, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.putrequest("GET", path, skip_host=True)
        connection.putheader("Host", host)
        connection.endheaders()
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()
