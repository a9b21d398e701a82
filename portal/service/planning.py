"""The release service's planning documents: comparisons with England, the region and the
statistical neighbours; Supporting Families claims; the quarterly progress return.

Each is built here, in the service, from one release's protected tables (`portal.protected`
over `anonymise.release.tabulate`, the only door to published figures) and the comparator
statistics in the store; the portal's pages only draw them. A document is built once per
release, comparator load and planning settings, and each user's first request for it is
written to the audit log ("document_query").

`router(state, caller)` gives the routes; `create_app` includes them with its own caller
check (any signed-in role), so they are denied by default like every other /v1 route.
"""

# No `from __future__ import annotations`: FastAPI reads the annotations at runtime.

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response

from pipelines.planning_config import PlanningConfig, PlanningConfigError, load_planning
from pipelines.store_comparators import list_datasets
from portal.comparisons import comparisons_document
from portal.protected import Tables
from portal.service.signin import SessionUser
from portal.supporting_families import (
    ReturnError,
    claims_document,
    load_return_layout,
    quarterly_return,
    return_csv,
)
from registry.errors import UnknownReleaseError
from registry.measures import ReleaseInfo


def _error(status: int, error: str, message: str, **extra: Any) -> HTTPException:
    return HTTPException(status, {"error": error, "message": message, **extra})


def router(state: Any, caller: Callable[..., Awaitable[SessionUser]]) -> APIRouter:
    """The planning routes over the service's state (`portal.service.app.ServiceState`:
    its store, policy, ptable, caches and audit writer); `caller` checks the session."""
    api = APIRouter(tags=["planning"])
    Caller = Annotated[SessionUser, Depends(caller)]
    ReleaseQuery = Annotated[str | None, Query(description="A release id (default: latest).")]
    QuarterQuery = Annotated[str, Query(description="A financial quarter, e.g. '2025/26 Q2'.")]

    def _release(release: str | None) -> ReleaseInfo:
        try:
            info = state.release_info(release) if release else state.latest_release()
        except UnknownReleaseError as exc:
            raise _error(404, "unknown_release", str(exc)) from None
        if info is None:
            raise _error(404, "no_release", "no release has been published yet")
        return info

    def _config(info: ReleaseInfo) -> PlanningConfig:
        try:
            return load_planning(measures=frozenset(state.store.read_meta(info.release_id)))
        except PlanningConfigError as exc:
            raise _error(
                503, "planning_settings", "the planning settings are not valid",
                problems=exc.problems,
            ) from None  # fmt: skip

    def _tables(info: ReleaseInfo) -> Tables:
        return Tables(state.store, state.policy, state.ptable, info.release_id)

    def _cached(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        hit = state.rendered.get(key)
        if hit is None:
            hit = build()
            state.rendered.put(key, hit)
        return hit

    def _audit(user: SessionUser, key: tuple[Any, ...], detail: dict[str, Any], rid: str) -> None:
        if state.audited.add_if_new((user.token_hash, *key)):
            state.audits.put(
                user.user_id, "document_query", {"roles": user.role_key, **detail}, rid
            )

    def _settings_key(config: PlanningConfig) -> str:
        return hashlib.sha256(repr(config).encode("utf-8")).hexdigest()[:16]

    @api.get("/v1/comparators")
    def comparators(user: Caller) -> dict[str, Any]:
        """The comparator data sets loaded (`portal comparators load`): published statistics."""
        return {"datasets": [d.public() for d in list_datasets(state.store)]}

    @api.get("/v1/comparisons")
    def comparisons(
        user: Caller,
        release: ReleaseQuery = None,
    ) -> dict[str, Any]:
        """Each measure with a national equivalent beside its region, statistical
        neighbours and England (LAIT's change, trend, rank and quartile band); the others
        with the reason they are not compared."""
        info = _release(release)
        config = _config(info)
        loaded = tuple((d.dataset, d.sha256) for d in list_datasets(state.store))
        key = ("comparisons", info.release_id, loaded, _settings_key(config))
        doc = _cached(
            key,
            lambda: comparisons_document(
                state.store, _tables(info), config, release_id=info.release_id
            ),
        )
        _audit(user, key[:2], {"document": "comparisons"}, info.release_id)
        return dict(doc)

    @api.get("/v1/supporting-families/claims")
    def claims(
        user: Caller,
        release: ReleaseQuery = None,
    ) -> dict[str, Any]:
        """Supporting Families claims by financial year and quarter, each claim rule,
        progress against the council's target and outcomes by headline."""
        info = _release(release)
        config = _config(info)
        key = ("sf_claims", info.release_id, _settings_key(config))
        doc = _cached(
            key,
            lambda: claims_document(
                _tables(info), config, release_id=info.release_id, data_as_at=info.data_as_at
            ),
        )
        _audit(user, key[:2], {"document": "sf_claims"}, info.release_id)
        return dict(doc)

    @api.get("/v1/supporting-families/return")
    def sf_return(
        quarter: QuarterQuery,
        user: Caller,
        release: ReleaseQuery = None,
        format: Literal["json", "csv"] = "json",  # noqa: A002 - the API's parameter name
    ) -> Response:
        """The Supporting Families quarterly progress return for one quarter: JSON, or the
        CSV to submit (`portal sf-return` writes the same)."""
        info = _release(release)
        config = _config(info)
        key = ("sf_return", info.release_id, quarter.strip(), _settings_key(config))

        def build() -> dict[str, Any]:
            try:
                layout = load_return_layout(measures=set(state.store.read_meta(info.release_id)))
                return quarterly_return(
                    _tables(info), config, layout, quarter=quarter.strip(),
                    release_id=info.release_id, data_as_at=info.data_as_at,
                )  # fmt: skip
            except ReturnError as exc:
                raise _error(
                    422, "return", "cannot make this return", problems=exc.problems
                ) from None

        doc = _cached(key, build)
        _audit(
            user,
            key[:3],
            {"document": "sf_return", "quarter": quarter, "format": format},
            info.release_id,
        )
        if format == "csv":
            name = f"sf-return-{quarter.strip().replace('/', '-').replace(' ', '-')}.csv"
            return Response(
                return_csv(doc),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        return Response(
            json.dumps(doc, ensure_ascii=False).encode("utf-8"), media_type="application/json"
        )

    return api
