"""A local web page for asking a video: ``python -m avqa.demo`` (cli.py).

Where the parts live: catalog.py (the models, the main job's clips, the templates), uploads.py (the
uploads' temporary folder and their checks), service.py (answers through avqa.ask's API, features
kept per clip, the answer laid out for the page), server.py (the HTTP server and its JSON API),
static/ (the page: plain HTML, CSS and JavaScript).
"""
from .service import Demo, DemoError
from .server import DemoServer

__all__ = ["Demo", "DemoError", "DemoServer"]
