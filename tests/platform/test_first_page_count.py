"""A list that fits on its first page is not counted again (fewer rows than a page is the whole list); a full
first page and later pages are counted as before. Exact X-Total-Count and Link headers either way."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import bearer_client, make_project


def _counts(queries) -> int:
    return sum(query["sql"].startswith('SELECT COUNT(*) AS "__count"') for query in queries)


def test_it_does_not_count_a_list_shorter_than_a_page(owner, org, project):
    make_project(org, "Second", owner)
    client = bearer_client(owner)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/projects")
    assert response.status_code == 200 and len(response.json()) == 2
    assert response.headers["X-Total-Count"] == "2" and "Link" not in response.headers
    assert _counts(queries.captured_queries) == 0


def test_it_counts_a_full_first_page_and_the_pages_after(owner, org, project):
    for i in range(4):
        make_project(org, f"P{i}", owner)
    client = bearer_client(owner)
    with CaptureQueriesContext(connection) as queries:
        first = client.get("/api/v1/projects?page_size=2")
    assert [len(first.json()), first.headers["X-Total-Count"]] == [2, "5"]
    assert 'rel="next"' in first.headers["Link"] and 'rel="prev"' not in first.headers["Link"]
    assert _counts(queries.captured_queries) == 1
    last = client.get("/api/v1/projects?page_size=2&page=3")
    assert [len(last.json()), last.headers["X-Total-Count"]] == [1, "5"]
    assert 'rel="prev"' in last.headers["Link"] and 'rel="next"' not in last.headers["Link"]
    # Exactly a page: counted, and no next page.
    exact = client.get("/api/v1/projects?page_size=5")
    assert [len(exact.json()), exact.headers["X-Total-Count"]] == [5, "5"] and "Link" not in exact.headers
    pages = [client.get(f"/api/v1/projects?page_size=2&page={page}").json() for page in (1, 2, 3)]
    names = [row["name"] for page in pages for row in page]
    assert names == sorted(names) and len(set(names)) == 5
    assert client.get("/api/v1/projects?page=4&page_size=2").status_code == 404
