"""A loopback stand-in for the LangSmith API that keeps every run it is sent.

The real `langsmith` client posts runs as multipart forms (`post.<id>`,
`patch.<id>`, `post.<id>.inputs`, ...) or JSON batches; both are merged here
into one dict per run id. Raw request bodies and headers are kept too, so a
test can search everything the client sent.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

INFO = {
    "version": "capture",
    "batch_ingest_config": {
        "use_multipart_endpoint": True,
        "scale_up_qsize_trigger": 1000,
        "scale_up_nthreads_limit": 16,
        "scale_down_nempty_trigger": 4,
        "size_limit": 100,
        "size_limit_bytes": 20_971_520,
    },
}


class CaptureServer:
    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {}
        self.raw: list[tuple[str, dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> CaptureServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def merge(self, run: dict[str, Any]) -> None:
        with self._lock:
            current = self.runs.setdefault(str(run.get("id")), {})
            current.update({k: v for k, v in run.items() if v is not None})

    def _multipart(self, body: bytes, content_type: str) -> None:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition") or ""
            pieces = str(name).split(".")
            if len(pieces) < 2:
                continue
            try:
                data = json.loads(part.get_payload(decode=True) or b"null")
            except json.JSONDecodeError:
                continue
            if len(pieces) == 2 and isinstance(data, dict):
                self.merge({**data, "id": pieces[1]})
            elif len(pieces) == 3:
                self.merge({"id": pieces[1], pieces[2]: data})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        capture = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, payload: object) -> None:
                body = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                if self.headers.get("transfer-encoding", "").lower() == "chunked":
                    data = b""
                    while size := int(self.rfile.readline().strip(), 16):
                        data += self.rfile.read(size)
                        self.rfile.readline()
                    self.rfile.readline()
                    return data
                return self.rfile.read(int(self.headers.get("content-length") or 0))

            def do_GET(self) -> None:
                self._reply(INFO if self.path.startswith("/info") else {})

            def do_POST(self) -> None:
                body = self._body()
                if self.headers.get("content-encoding") == "zstd":
                    import zstandard

                    body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
                with capture._lock:
                    capture.raw.append((self.path, dict(self.headers), body))
                if self.path.startswith("/runs/multipart"):
                    capture._multipart(body, self.headers.get("content-type", ""))
                elif self.path.startswith("/runs/batch"):
                    batch = json.loads(body)
                    for run in batch.get("post", []) + batch.get("patch", []):
                        capture.merge(run)
                elif self.path.rstrip("/") == "/runs":
                    capture.merge(json.loads(body))
                elif self.path.startswith("/runs/"):
                    capture.merge({**json.loads(body), "id": self.path.split("/")[2]})
                self._reply({})

            do_PATCH = do_POST

        return Handler
