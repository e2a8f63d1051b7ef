"""The dashboard over HTTP on 127.0.0.1 only, in a daemon thread (started by `codekin serve`).

GET / renders the page fresh from metrics.db; GET /data.json gives the same data as JSON.
Only a request naming this server by a loopback name and its port is answered: any other
`Host:` is a page of another site that resolved its name to 127.0.0.1 (DNS rebinding),
and the dashboard shows the repository's path and run history.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from codekin.dashboard.report import collect, render

log = logging.getLogger(__name__)
HOST = "127.0.0.1"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def allowed_hosts(port: int) -> frozenset[str]:
    """The `Host:` values a browser sends for this server: a loopback name and the port."""
    return frozenset(f"{name}:{port}" for name in LOOPBACK_NAMES)


class DashboardServer:
    def __init__(self, root: Path, port: int = 0) -> None:
        self.root = Path(root)
        self.port = port
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def start(self) -> DashboardServer:
        root, server = self.root, self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server name
                path = self.path.split("?")[0]
                if (self.headers.get("Host") or "").strip().lower() not in allowed_hosts(server.port):
                    self.send_error(421, "the dashboard answers only http://127.0.0.1, localhost or [::1] "
                                         "with its port")
                    return
                if path in ("/", "/index.html"):
                    body, kind = render(collect(root)).encode("utf-8"), "text/html; charset=utf-8"
                elif path == "/data.json":
                    body, kind = json.dumps(collect(root), default=str).encode("utf-8"), "application/json"
                else:
                    self.send_error(404, "the dashboard has / and /data.json")
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the http.server name
                log.debug("dashboard: " + format, *args)

        self._httpd = ThreadingHTTPServer((HOST, self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, name="codekin-dashboard", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
