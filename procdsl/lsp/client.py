"""A minimal JSON-RPC client that drives ``procdsl lsp`` over stdio, as an editor would — used by
the protocol tests and by ``benchmarks/lsp_latency.py``.

    with Client() as c:
        c.initialize("/path/to/workspace")
        c.open("/path/to/x.curr", text)
        diagnostics = c.diagnostics("/path/to/x.curr")
        c.request("textDocument/hover", {...})

Messages are ``Content-Length``-framed JSON; a reader thread files responses by id and queues
notifications; requests from the server (capability registration, progress) get a null result.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO, Any, Optional

from procdsl.lsp.positions import file_uri


class ServerError(Exception):
    """The server answered a request with an error."""


class Client:
    def __init__(self, argv: Optional[list[str]] = None, timeout: float = 30.0):
        self.proc = subprocess.Popen(
            argv or [sys.executable, "-m", "procdsl.cli", "lsp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None  # both are PIPEs
        self._stdin: IO[bytes] = self.proc.stdin
        self._stdout: IO[bytes] = self.proc.stdout
        self.timeout = timeout
        self._next = 0
        self._responses: dict[int, queue.Queue] = {}
        self._lock = threading.Lock()
        self.notifications: queue.Queue[dict] = queue.Queue()
        self._versions: dict[str, int] = {}
        threading.Thread(target=self._read, daemon=True).start()

    # ---------------------------------------------------------------------------- wire
    def _send(self, message: dict) -> None:
        body = json.dumps(message).encode("utf-8")
        self._stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self._stdin.flush()

    def _read(self) -> None:
        out = self._stdout
        while True:
            length = -1  # no Content-Length header: read to the end
            while True:
                line = out.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            message = json.loads(out.read(length))
            if "method" in message and "id" in message:  # a request from the server
                self._send({"jsonrpc": "2.0", "id": message["id"], "result": None})
            elif "method" in message:
                self.notifications.put(message)
            else:
                self._responses.setdefault(message["id"], queue.Queue()).put(message)

    # -------------------------------------------------------------------------- calls
    def request(self, method: str, params: Any) -> Any:
        with self._lock:
            self._next += 1
            ident = self._next
            self._responses.setdefault(ident, queue.Queue())
        self._send({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})
        message = self._responses[ident].get(timeout=self.timeout)
        del self._responses[ident]
        if "error" in message:
            raise ServerError(message["error"].get("message", str(message["error"])))
        return message.get("result")

    def notify(self, method: str, params: Any) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait(self, method: str, accept: Callable[[dict], bool] = lambda params: True) -> dict:
        """The params of the next notification ``method`` that ``accept`` takes (others are dropped)."""
        while True:
            message = self.notifications.get(timeout=self.timeout)
            if message["method"] == method and accept(message["params"]):
                return message["params"]

    # ----------------------------------------------------------------------- helpers
    def initialize(self, root: str) -> dict:
        result = self.request(
            "initialize", {"processId": None, "rootUri": file_uri(root), "capabilities": {}}
        )
        self.notify("initialized", {})
        return result

    def open(self, path: str, text: str) -> None:
        self._versions[path] = 1
        self.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": file_uri(path), "languageId": "curr", "version": 1, "text": text}},
        )

    def change(self, path: str, text: str) -> None:
        """Replace the whole text of an open document."""
        self._versions[path] += 1
        self.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": file_uri(path), "version": self._versions[path]},
                "contentChanges": [{"text": text}],
            },
        )

    def close_document(self, path: str) -> None:
        self.notify("textDocument/didClose", {"textDocument": {"uri": file_uri(path)}})

    def diagnostics(self, path: str) -> list[dict]:
        """The next diagnostics published for ``path``."""
        uri = file_uri(path)
        return self.wait("textDocument/publishDiagnostics", lambda p: p["uri"] == uri)["diagnostics"]

    def at(self, method: str, path: str, line: int, character: int, **extra: Any) -> Any:
        """A request about a position (0-based, as on the wire)."""
        return self.request(
            method,
            {
                "textDocument": {"uri": file_uri(path)},
                "position": {"line": line, "character": character},
                **extra,
            },
        )

    def close(self) -> None:
        try:
            self.request("shutdown", None)
            self.notify("exit", None)
            self.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001 - a dead server is closed already
            self.proc.kill()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
