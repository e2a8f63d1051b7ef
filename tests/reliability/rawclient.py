"""A JSON-RPC client over a server's stdin/stdout with nothing between: it writes any bytes
(the fuzzer's broken frames too) and answers the server's own requests with null."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

ANSWER_S = 30.0


class RawClient:
    """JSON-RPC over the server's stdin/stdout with nothing between: we write any bytes."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.proc = subprocess.Popen(command, env=env, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=log.open("ab"))
        self.responses: queue.Queue[dict[str, Any]] = queue.Queue()
        self.next_id = 1_000_000
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.proc.stdout
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    return
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
                if line in (b"\r\n", b"\n") and length is not None:
                    break
            message = json.loads(stream.read(length))
            if "method" in message and "id" in message:  # a server->client request: answer it
                self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
            elif "id" in message:
                self.responses.put(message)

    def write(self, data: bytes) -> None:
        with self._lock:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def send(self, message: Any) -> None:
        body = json.dumps(message).encode()
        self.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def wait_for(self, wanted: int, timeout: float = ANSWER_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self.responses.get(timeout=0.2)
            except queue.Empty:
                assert self.proc.poll() is None, f"the server died (exit {self.proc.returncode})"
                continue
            if message.get("id") == wanted:
                return message
        raise AssertionError(f"no answer to request {wanted} within {timeout} s")

    def request(self, method: str, params: Any, timeout: float = ANSWER_S) -> dict[str, Any]:
        number = self.new_id()
        self.send({"jsonrpc": "2.0", "id": number, "method": method, "params": params})
        return self.wait_for(number, timeout)

    def probe(self) -> None:
        answer = self.request("workspace/executeCommand", {"command": "codekin.status", "arguments": []})
        assert "result" in answer, answer

    def close(self, timeout: float = 30.0) -> bool:
        """shutdown + exit; True when the server ended by itself within `timeout`, else it is killed."""
        if self.proc.poll() is not None:
            return False
        try:
            self.request("shutdown", None)
            self.send({"jsonrpc": "2.0", "method": "exit"})
            self.proc.wait(timeout=timeout)
            return True
        except (AssertionError, OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
            return False
