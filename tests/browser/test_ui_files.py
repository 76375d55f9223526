"""``GET /ui`` and ``GET /ui/{path:path}`` in process: the page's files with their types and cache headers, public
while keys are set, and nothing outside ``service/ui/`` (no traversal, no hidden or unlisted files). No browser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from error_body import assert_error
from fastapi.testclient import TestClient

from xalign.service.app import create_app
from xalign.service.errors import NotFoundError
from xalign.service.routes.ui import UI_ROOT, ui_file
from xalign.service.settings import Settings

PAGE_FILES = ["index.html", "app.js", "api.js", "dom.js", "charts.js", "style.css", "favicon.svg"]


@pytest.fixture(scope="module")
def client(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app with a read and an admin key: the page must load without either."""
    data = tmp_path_factory.mktemp("ui-files-data")
    settings = Settings(store=tiny_store, threads=1, api_keys=["r"], admin_api_keys=["a"], data_dir=data)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def test_ui_redirects_to_the_folder(client: TestClient) -> None:
    response = client.get("/ui", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "ui/"
    assert client.get("/ui").url.path == "/ui/"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("", "text/html; charset=utf-8"),
        ("index.html", "text/html; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ],
)
def test_files_with_their_types_and_headers(client: TestClient, path: str, content_type: str) -> None:
    response = client.get(f"/ui/{path}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == content_type
    assert response.content == (UI_ROOT / (path or "index.html")).read_bytes()
    assert response.headers["cache-control"] == "no-cache" and response.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    etag = response.headers["etag"]
    again = client.get(f"/ui/{path}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag


def test_every_file_the_page_names_is_served(client: TestClient) -> None:
    index = client.get("/ui/").text
    for name in PAGE_FILES:
        assert client.get(f"/ui/{name}").status_code == 200, name
    assert 'src="app.js"' in index and 'href="style.css"' in index
    for module in ("api.js", "dom.js", "charts.js", "compare.js", "mine.js", "jobs.js", "senses.js", "models.js"):
        assert client.get(f"/ui/{module}").status_code == 200, module


def test_the_page_is_not_in_the_openapi_schema(client: TestClient) -> None:
    assert not [p for p in client.get("/openapi.json").json()["paths"] if p.startswith("/ui")]


@pytest.mark.parametrize(
    "path",
    [
        "../routes/ui.py",
        "%2e%2e/routes/ui.py",
        "..%2Froutes%2Fui.py",
        "..%5Croutes%5Cui.py",
        "vendor/../../app.py",
        "%2Fetc%2Fpasswd",
        "README.md",
        "missing.js",
        ".hidden.js",
        "app.js%00.png",
        "",  # stands for index.html: served (the control case of this list)
    ],
)
def test_nothing_outside_the_page_is_served(client: TestClient, path: str) -> None:
    response = client.get(f"/ui/{path}")
    if path == "":
        assert response.status_code == 200
        return
    assert response.status_code == 404, (path, response.status_code)
    assert_error(response, 404, "not_found_error")
    assert "import" not in response.text and "root:" not in response.text


def test_ui_file_refuses_traversal_and_links_out(tmp_path: Path) -> None:
    root = tmp_path / "ui"
    root.mkdir()
    (root / "index.html").write_text("<p>page</p>", encoding="utf-8")
    (tmp_path / "secret.js").write_text("secret", encoding="utf-8")
    (root / "link.js").symlink_to(tmp_path / "secret.js")
    assert ui_file("", root) == (root / "index.html").resolve()
    for path in ("../secret.js", "link.js", "/etc/passwd", "a/../../secret.js", "sub\\..\\x.js", ".", "x\x00.js"):
        with pytest.raises(NotFoundError):
            ui_file(path, root)
