"""The portal's cache of the service's answers: keyed by the user's roles and, for tables,
by release and query, so a new release is never answered from an older one's tables and a
role never sees another role's answer; the session token is not part of the key; errors
are not cached; cached answers cannot be changed by a page."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from portal.web import data


def _table_doc(measure: str, release: str, count: int) -> dict[str, Any]:
    return {
        "measure": measure,
        "title": measure.title(),
        "unit": "children",
        "by": ["locality"],
        "where": {},
        "margins": False,
        "columns": [
            {"name": "locality", "type": "string"},
            {"name": "count", "type": "string"},
            {"name": "count_value", "type": "integer"},
        ],
        "rows": [{"locality": "North", "count": str(count), "count_value": count}],
        "footnotes": [],
        "policy": "council-sdc@2",
        "release_id": release,
        "data_as_at": "2026-03-31",
    }


@pytest.fixture
def service(monkeypatch):
    """A stand-in for the release service: answers by release and role; records calls."""
    calls: list[tuple[str, str, Any, str | None]] = []
    counts = {"R1": 11, "R2": 22}

    def call(method, path, *, token=None, params=None, body=None, timeout=None):
        calls.append((method, path, params, token))
        request = httpx.Request(method, f"http://service{path}")
        if path.startswith("/v1/tables/"):
            release = dict(params)["release"]
            if release == "broken":
                return httpx.Response(503, json={"detail": {"message": "down"}}, request=request)
            doc = _table_doc(path.rsplit("/", 1)[1], release, counts[release])
            return httpx.Response(200, json=doc, request=request)
        if path == "/v1/measures":
            doc = {
                "measures": [
                    {
                        "measure": "contacts",
                        "title": "Contacts",
                        "definition": "d",
                        "unit": "contacts",
                        "breakdowns": ["locality"],
                    }
                ]
            }
            return httpx.Response(200, json=doc, request=request)
        if path == "/v1/releases/latest":
            doc = {
                "release_id": f"R{len(calls)}",
                "data_as_at": "2026-03-31",
                "created_at": "2026-04-01T00:00:00",
                "policy": "council-sdc@2",
            }
            return httpx.Response(200, json=doc, request=request)
        raise AssertionError(path)

    monkeypatch.setattr(data, "_call", call)
    data.clear_caches()
    yield calls
    data.clear_caches()


def _tables(calls):
    return [c for c in calls if c[1].startswith("/v1/tables/")]


def test_a_table_is_fetched_once_per_release_and_query(service):
    first = data.protected_table("admin", "tok-a", "R1", "contacts", ("locality",))
    again = data.protected_table("admin", "tok-b", "R1", "contacts", ("locality",))
    assert again is first  # the same answer, another session of the same roles
    assert len(_tables(service)) == 1
    newer = data.protected_table("admin", "tok-a", "R2", "contacts", ("locality",))
    assert len(_tables(service)) == 2
    assert first.data["count_value"].to_list() == [11]
    assert newer.data["count_value"].to_list() == [22]  # never the older release's table
    data.protected_table("admin", "tok-a", "R1", "contacts", ("age_band",))
    data.protected_table("admin", "tok-a", "R1", "contacts", ("locality",), margins=True)
    data.protected_table("admin", "tok-a", "R1", "referrals", ("locality",))
    assert len(_tables(service)) == 5  # another breakdown, margins, measure: another query


def test_roles_never_share_an_answer(service):
    data.protected_table("admin", "tok-a", "R1", "contacts", ("locality",))
    data.protected_table("leadership", "tok-l", "R1", "contacts", ("locality",))
    assert [c[3] for c in _tables(service)] == ["tok-a", "tok-l"]


def test_errors_are_not_cached(service):
    for _ in range(2):
        with pytest.raises(data.DataUnavailableError):
            data.protected_table("admin", "tok-a", "broken", "contacts", ("locality",))
    assert len(_tables(service)) == 2


def test_the_latest_release_is_asked_again_after_its_time_to_live(service, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(data.time, "monotonic", lambda: clock[0])
    first = data.latest_release("admin", "tok-a")
    assert data.latest_release("admin", "tok-a") is first
    clock[0] += 61
    assert data.latest_release("admin", "tok-a") != first
    assert sum(c[1] == "/v1/releases/latest" for c in service) == 2


def test_cached_answers_cannot_be_changed_by_a_page(service):
    meta = data.release_measures("admin", "tok-a", "R1")
    with pytest.raises(TypeError):
        meta["contacts"] = meta["contacts"]  # type: ignore[index]
    table = data.protected_table("admin", "tok-a", "R1", "contacts", ("locality",))
    with pytest.raises(AttributeError):
        table.measure = "other"  # type: ignore[misc]


def test_the_cache_forgets_the_oldest_beyond_its_size(service):
    small = data._Memo(lambda role, token, n: object(), ttl=None, max_entries=2)
    a = small("admin", "t", 1)
    small("admin", "t", 2)
    small("admin", "t", 3)
    assert small("admin", "t", 3) is small("admin", "t", 3)
    assert small("admin", "t", 1) is not a


def test_another_service_is_asked_again(service, monkeypatch):
    """Answers are the answering service's: a portal pointed at another service (a test's,
    a restarted one elsewhere) never gets the first one's cached answers."""
    monkeypatch.setenv("PORTAL_SERVICE_URL", "http://one:8600")
    data.protected_table("admin", "tok-a", "R1", "contacts", ("locality",))
    monkeypatch.setenv("PORTAL_SERVICE_URL", "http://two:8600")
    data.protected_table("admin", "tok-a", "R1", "contacts", ("locality",))
    assert len(_tables(service)) == 2
