"""Static files: url_for('static', ...) adds ?v=<the file's content hash>, and a URL with the
current hash is cached for a year (it names that content only: a changed file gets a new URL);
CSS and JavaScript are gzipped for a browser that accepts it. Pages are never compressed here:
they carry CSRF tokens next to what a visitor typed (BREACH).

Written here rather than with Flask-Compress or WhiteNoise: the cache rule needs the fingerprint
anyway, and gzip for a handful of small static files is the few lines in `finish`."""

import gzip
import hashlib
from functools import lru_cache
from pathlib import Path

from flask import Flask, current_app, request

TEXT_TYPES = {"text/css", "text/javascript", "application/javascript", "image/svg+xml"}
YEAR = "public, max-age=31536000, immutable"


@lru_cache(maxsize=256)
def _digest(path: Path, mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def fingerprint(filename: str) -> str | None:
    """The file's content hash (read again only when its mtime changes); None if it is missing."""
    path = Path(current_app.static_folder, filename)
    try:
        return _digest(path, path.stat().st_mtime_ns)
    except OSError:
        return None


def add_version(endpoint: str, values: dict) -> None:
    if endpoint == "static" and "v" not in values:
        version = fingerprint(values.get("filename", ""))
        if version:
            values["v"] = version


@lru_cache(maxsize=64)
def _gzipped(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def finish(response):
    """A year's cache for a fingerprinted URL (an old hash gets the default no-cache), and gzip."""
    if request.endpoint != "static" or response.status_code != 200:
        return response
    version = request.args.get("v")
    if version and version == fingerprint(request.view_args["filename"]):
        response.headers["Cache-Control"] = YEAR
    response.vary.add("Accept-Encoding")
    if response.mimetype in TEXT_TYPES and "gzip" in request.accept_encodings:
        response.direct_passthrough = False  # send_file streams the file: read it to compress
        response.set_data(_gzipped(response.get_data()))
        response.headers["Content-Encoding"] = "gzip"
        etag, _ = response.get_etag()
        if etag:  # the same content in another encoding: a weak validator still answers 304
            response.set_etag(etag, weak=True)
    return response


def init_app(app: Flask) -> None:
    app.url_defaults(add_version)
    app.after_request(finish)
