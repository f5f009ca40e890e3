"""The page's HTTP server: Python's own ThreadingHTTPServer, plain HTML and JavaScript (static/), and a
JSON API over ``Demo``. Every refusal is one sentence in JSON ({"error": ...}); the server keeps serving.

    GET  /                 the page          GET  /api/catalog        models, clips, templates
    GET  /video/<clip>     the clip (ranges) GET  /thumb/<clip>.jpg   its first frame, small
    POST /api/ask          {"clip", "question", "model"} -> the answer laid out for the page
    POST /api/upload       the video's bytes, its name in X-Filename -> {"clip": ...}
"""
from __future__ import annotations

import io
import json
import mimetypes
import re
import sys
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import av
from PIL import Image

from ..ask import AskError
from ..media import rgb_array
from .service import Demo, DemoError, Recent
from .uploads import UploadError, check_upload

DISCARD = 64 << 20  # the most of a refused upload read (and dropped) so that the browser sees the reply

STATIC = Path(__file__).parent / "static"
PAGES = {"/": "index.html", "/demo.js": "demo.js", "/demo.css": "demo.css"}
MAX_JSON = 1 << 16


def thumbnail(video: Path, width: int = 160) -> bytes:
    """The clip's first frame as a small JPEG."""
    with av.open(str(video)) as container:
        frame = Image.fromarray(rgb_array(next(container.decode(video=0))))
    frame.thumbnail((width, width))
    buf = io.BytesIO()
    frame.convert("RGB").save(buf, format="JPEG", quality=85)
    return buf.getvalue()


class DemoServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], demo: Demo, quiet: bool = False):
        super().__init__(address, Handler)
        self.demo, self.quiet = demo, quiet
        self.thumbs = Recent(keep=4096)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}/"


class Handler(BaseHTTPRequestHandler):
    server: DemoServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            super().log_message(fmt, *args)

    # ------------------------------------------------------------------ replies

    def send_bytes(self, body: bytes, kind: str, status: int = 200, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, obj: dict, status: int = 200) -> None:
        self.send_bytes(json.dumps(obj).encode(), "application/json", status)

    def refuse(self, sentence: str, status: int = HTTPStatus.BAD_REQUEST) -> None:
        self.send_json({"error": sentence}, status)

    # ------------------------------------------------------------------ routes

    def do_GET(self):
        path = unquote(self.path.split("?", 1)[0])
        demo = self.server.demo
        try:
            if path in PAGES:
                name = PAGES[path]
                kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
                return self.send_bytes((STATIC / name).read_bytes(), f"{kind}; charset=utf-8")
            if path == "/api/catalog":
                return self.send_json(demo.catalog())
            m = re.fullmatch(r"/(video|thumb)/(\w+)(?:\.jpg)?", path)
            if m and m.group(2) in demo.clips:
                clip = demo.clips[m.group(2)]
                if m.group(1) == "thumb":
                    body = self.server.thumbs.get_or_make(clip.path, lambda: thumbnail(clip.path))
                    return self.send_bytes(body, "image/jpeg")
                return self.send_file(clip.path)
            self.refuse(f"{path}: no such page", HTTPStatus.NOT_FOUND)
        except (OSError, av.error.FFmpegError, StopIteration) as e:
            self.refuse(f"{path}: cannot be read ({e})", HTTPStatus.INTERNAL_SERVER_ERROR)

    do_HEAD = do_GET

    def send_file(self, path: Path) -> None:
        """A video, whole or the byte range asked for (the browser's player seeks with ranges)."""
        size = path.stat().st_size
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
        start, end = 0, size - 1
        if m and (m.group(1) or m.group(2)):
            if m.group(1):
                start, end = int(m.group(1)), min(int(m.group(2) or size - 1), size - 1)
            else:
                start = max(0, size - int(m.group(2)))
            if start > end:
                return self.send_bytes(b"", kind, HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                                       {"Content-Range": f"bytes */{size}"})
        with open(path, "rb") as f:
            f.seek(start)
            body = f.read(end - start + 1)
        headers = {"Accept-Ranges": "bytes"}
        if m:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        self.send_bytes(body, kind, HTTPStatus.PARTIAL_CONTENT if m else HTTPStatus.OK, headers)

    def discard(self, length: int) -> None:
        """Read and drop a refused request's body, or close the connection after the reply when it is large."""
        if length > DISCARD:
            self.close_connection = True
            return
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                break
            length -= len(chunk)

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            return self.refuse("the request has no length: send it again from the page")
        try:
            if path == "/api/upload":
                name = unquote(self.headers.get("X-Filename", ""))
                try:
                    check_upload(name, length)
                except UploadError:
                    self.discard(length)
                    raise
                clip = self.server.demo.add_upload(name, self.rfile, length)
                return self.send_json({"clip": clip.as_dict()})
            if path == "/api/ask":
                if length > MAX_JSON:
                    self.discard(length)
                    raise DemoError("the question is too long")
                try:
                    req = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    raise DemoError("the request is not JSON: send the question from the page") from None
                if not isinstance(req, dict):
                    raise DemoError("the request is not a question: send it from the page")
                return self.send_json(self.server.demo.ask(str(req.get("clip", "")), str(req.get("question", "")),
                                                           req.get("model")))
            self.refuse(f"{path}: no such action", HTTPStatus.NOT_FOUND)
        except (AskError, DemoError, UploadError) as e:
            self.refuse(str(e))
        except Exception as e:  # a failure of the server's own: one sentence in the page, the details here
            traceback.print_exc(file=sys.stderr)
            self.refuse(f"the server failed on this request ({type(e).__name__}: {e}); the terminal that runs "
                        f"python -m avqa.demo shows the details", HTTPStatus.INTERNAL_SERVER_ERROR)
