"""Static files: a URL that names the content (?v=<hash>) is cached for a year and changes when the
file does; CSS and JavaScript are gzipped for a browser that accepts it; pages are not."""

import gzip
import os
import re
import shutil

import pytest
from flask import url_for

from service.config import PACKAGE
from service.web.static_files import YEAR


def stylesheet_url(client) -> str:
    return re.search(r'href="(/static/app\.css\?v=[0-9a-f]+)"', client.get("/login").text).group(1)


def test_pages_link_the_fingerprinted_stylesheet_cached_for_a_year(client):
    url = stylesheet_url(client)
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == YEAR
    assert "Accept-Encoding" in response.headers["Vary"]
    # An old or made-up version is not the content it names: revalidated, never kept a year.
    assert client.get("/static/app.css?v=000000000000").headers["Cache-Control"] == "no-cache"
    assert client.get("/static/app.css").headers["Cache-Control"] == "no-cache"
    # The CSP (script-src/style-src 'self') still holds on pages: nothing inline was added.
    assert "style-src 'self'" in client.get("/login").headers["Content-Security-Policy"]


@pytest.fixture
def static_copy(app, tmp_path):
    """The app's static folder as a copy the test may change."""
    folder = tmp_path / "static"
    shutil.copytree(PACKAGE / "static", folder)
    app.static_folder = str(folder)
    return folder


def test_the_url_changes_when_the_file_changes(app, static_copy):
    with app.test_request_context():
        before = url_for("static", filename="app.css")
        (static_copy / "app.css").write_text("body { color: #000; }\n")
        stat = (static_copy / "app.css").stat()
        os.utime(static_copy / "app.css", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        after = url_for("static", filename="app.css")
    assert before != after and after.startswith("/static/app.css?v=")


def test_css_and_javascript_are_gzipped_when_accepted_and_pages_are_not(client):
    url = stylesheet_url(client)
    plain = client.get(url)
    zipped = client.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert "Content-Encoding" not in plain.headers
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == plain.data
    assert len(zipped.data) < len(plain.data) / 2
    assert int(zipped.headers["Content-Length"]) == len(zipped.data)
    script = client.get("/static/client.js", headers={"Accept-Encoding": "gzip"})
    assert script.headers["Content-Encoding"] == "gzip"
    # A page holds a CSRF token next to what the visitor typed: never compressed (BREACH).
    page = client.get("/login", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in page.headers
    # The compressed copy still answers a revalidation with 304.
    again = client.get(url, headers={"Accept-Encoding": "gzip",
                                     "If-None-Match": zipped.headers["ETag"]})
    assert again.status_code == 304
