"""Swagger UI (/api/v1/docs/) loads nothing from another host: its files are Carrel's own static files."""

import re

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client


def docs_page() -> str:
    response = Client().get("/api/v1/docs/")
    assert response.status_code == 200
    return response.content.decode()


def referenced_urls(page: str) -> list[str]:
    """Every address the page makes the browser load: src/href attributes and the schema URL of the script."""
    urls = re.findall(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']""", page)
    urls += re.findall(r"""\burl:\s*["']([^"']+)["']""", page)
    return urls


def test_the_docs_page_references_only_local_addresses(db):
    page = docs_page()
    urls = referenced_urls(page)
    assert len(urls) >= 5, urls  # favicon, CSS, two scripts, the schema
    # No host at all: not absolute (http:, https:) nor protocol-relative (//cdn...).
    assert all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    assert not re.search(r"(?i)\b(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page), "the page names another host"
    static = [url for url in urls if url.startswith(f"/{settings.STATIC_URL.strip('/')}/")]
    assert {url.rsplit("/", 1)[1] for url in static} >= {
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "swagger-ui.css",
        "favicon-32x32.png",
    }
    # The online validator badge (validator.swagger.io) is off.
    assert '"validatorUrl": null' in page


def test_the_files_the_docs_page_references_are_served(db, settings, tmp_path):
    # As in the image: collectstatic (the project's storage), then WhiteNoise serves STATIC_ROOT.
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STATIC_ROOT.mkdir()
    assert settings.STORAGES["staticfiles"]["BACKEND"].startswith("whitenoise.")
    assert "whitenoise.middleware.WhiteNoiseMiddleware" in settings.MIDDLEWARE
    static_prefix = f"/{settings.STATIC_URL.strip('/')}/"
    urls = referenced_urls(docs_page())
    static = [url for url in urls if url.startswith(static_prefix)]
    for url in static:
        assert finders.find(url.removeprefix(static_prefix)), f"{url}: no static file of that name"

    call_command("collectstatic", interactive=False, verbosity=0)
    client = Client()  # a new handler: WhiteNoise reads the collected files when it starts
    content_types = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    for url in static:
        response = client.get(url)
        assert response.status_code == 200, url
        body = b"".join(response.streaming_content)
        assert len(body) > 100, url
        expected = next(kind for suffix, kind in content_types.items() if url.endswith(suffix))
        assert expected in response["Content-Type"], (url, response["Content-Type"])
    schema = [url for url in urls if not url.startswith(static_prefix) and "schema" in url]
    assert schema == ["/api/v1/schema/"]
    assert client.get(schema[0]).status_code == 200


@pytest.mark.parametrize("setting", ["SWAGGER_UI_DIST", "SWAGGER_UI_FAVICON_HREF", "REDOC_DIST"])
def test_the_ui_files_come_from_the_sidecar(setting):
    assert settings.SPECTACULAR_SETTINGS[setting] == "SIDECAR"
    assert "drf_spectacular_sidecar" in settings.INSTALLED_APPS
