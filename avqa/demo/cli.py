"""See and hear the answer: ``python -m avqa.demo`` serves a page on this machine for asking a video.

Pick one of the main job's clips (the test split's first, each with some of the set's own questions)
or upload an mp4, mov or webm of up to a minute, with sound; type a question or build one from the 33
templates with the words the model knows; choose the model (the bundled AVST, and every AVST the main
job trained under --out). The page shows the answer and the top 5 with their probabilities, the
question's type, where the model looked (AVST's sound-guided spatial attention over each sampled
second, jet at 40% over the picture, as the original's figure), when it listened and looked (the
temporal attention over the seconds, as strips under the video) and the notes ``python -m avqa.ask``
prints. The answers are avqa.ask's (the same API), and a clip's features are computed once and reused
for the next question about it.

The server listens on 127.0.0.1 (this machine only) at a free port, printed as a link; Ctrl-C stops it
and removes the uploads (they live in a temporary folder of its own). It writes nothing under --data
or --out.
"""
from __future__ import annotations

import argparse
import errno
import signal
import sys
import threading
from pathlib import Path
from typing import Sequence

from ..utils import EXIT_CODES, at_least, user_errors
from .server import DemoServer
from .service import Demo


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m avqa.demo", description=__doc__, epilog=EXIT_CODES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data", help="the main job's dataset folder, whose videos/ make the gallery "
                                                  "(default: data, the main job's)")
    p.add_argument("--out", default="outputs", help="the main job's output folder, whose trained AVST checkpoints "
                                                    "are offered beside the bundled one (default: outputs)")
    p.add_argument("--model", action="append", default=[], metavar="PT",
                   help="another AVST checkpoint to offer (a .pt file; may be given more than once)")
    p.add_argument("--host", default="127.0.0.1",
                   help="the address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 opens the page to "
                        "the network, with no password)")
    p.add_argument("--port", type=at_least(0), default=0, help="the port, 0 to 65535 (default: 0, a free one, printed)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument("--quiet", action="store_true", help="do not print one line per request")
    return p


def serve(args: argparse.Namespace) -> int:
    missing = [m for m in args.model if not Path(m).is_file()]
    if missing:
        raise SystemExit(f"--model {missing[0]}: no such file; give the path of an AVST checkpoint (.pt)")
    demo = Demo(Path(args.data), Path(args.out), [Path(m) for m in args.model], args.device)
    try:
        try:
            server = DemoServer((args.host, args.port), demo, args.quiet)
        except OSError as e:
            why = "is in use by another program" if e.errno == errno.EADDRINUSE else f"cannot be used ({e.strerror})"
            raise SystemExit(f"--host {args.host} --port {args.port} {why}: leave --port out for a free port, "
                             f"or choose another") from None
        if not demo.clips:
            print(f"no clips in {args.data}/videos (python -m avqa.pipeline makes them): upload a video in the page")
        print(f"uploads go to {demo.uploads.folder}, removed when the server stops")
        print(f"avqa demo: {server.url}   (Ctrl-C stops it)", flush=True)
        catalog = demo.catalog()
        if catalog["default_model"]:
            threading.Thread(target=warm, args=(demo, catalog["default_model"]), daemon=True).start()
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a plain kill also removes the uploads
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    finally:
        demo.close()
    return 0


def warm(demo: Demo, key: str) -> None:
    """Load the first model's backbones while the page opens (a problem is said when a question is asked)."""
    try:
        demo.warm(key)
    except Exception:  # the same error reaches the page with the first question
        pass


@user_errors
def main(argv: Sequence[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.port > 65535:
        p.error(f"--port {args.port}: a port is a number from 0 to 65535")
    return serve(args)
