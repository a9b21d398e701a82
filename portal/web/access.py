"""Who may see which page: one registry, one checkpoint, deny by default.

`app.py` builds the navigation from `visible_pages(user)`, so a page a role may not
see is never registered and cannot be reached by URL; every page also passes
`portal.web.ui.page(key)`, which asks `can_view` again before it draws anything.
A page that is not in the registry, or a user without a role, sees nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from portal.web.config import ROLES


@dataclass(frozen=True)
class User:
    """A signed-in person. `user_id` is what the audit log records."""

    user_id: str
    name: str
    roles: frozenset[str]
    method: str  # "demo", "local" or "oidc"

    @classmethod
    def from_service(cls, info: dict[str, object]) -> User:
        """The user the release service says a session belongs to."""
        roles = info.get("roles") or []
        assert isinstance(roles, list)
        return cls(
            str(info["user_id"]),
            str(info["name"]),
            frozenset(str(r) for r in roles if r in ROLES),
            str(info["method"]),
        )

    @property
    def role_key(self) -> str:
        """The cache partition of this user: cached data is shared only between users
        with exactly the same roles."""
        return "+".join(sorted(self.roles)) or "none"

    @property
    def role_label(self) -> str:
        return ", ".join(ROLE_TITLES[r] for r in sorted(self.roles)) or "no role"


ROLE_TITLES = {
    "planner": "Planner",
    "researcher": "Researcher",
    "leadership": "Leadership",
    "admin": "Administrator",
}


@dataclass(frozen=True)
class PageSpec:
    key: str
    title: str
    path: str  # relative to app.py
    icon: str
    roles: frozenset[str]
    summary: str


def _roles(*names: str) -> frozenset[str]:
    unknown = set(names) - set(ROLES)
    assert not unknown, unknown
    return frozenset(names)


EVERYONE = _roles(*ROLES)

PAGES: tuple[PageSpec, ...] = (
    PageSpec(
        "home",
        "Home",
        "pages/views/home.py",
        ":material/home:",
        EVERYONE,
        "Headline figures and what changed since the last release.",
    ),
    PageSpec(
        "service_demand",
        "Service demand",
        "pages/views/service_demand.py",
        ":material/trending_up:",
        _roles("planner", "admin"),
        "Front Door contacts, Early Help referrals, step-up, step-down and closures.",
    ),
    PageSpec(
        "children_in_need",
        "Children in need",
        "pages/views/children_in_need.py",
        ":material/child_care:",
        _roles("planner", "leadership", "admin"),
        "Referrals, assessments, section 47 enquiries and child protection plans.",
    ),
    PageSpec(
        "looked_after",
        "Looked-after children",
        "pages/views/looked_after.py",
        ":material/home_work:",
        _roles("planner", "leadership", "admin"),
        "Children looked after, placement stability, adoptions and care leavers.",
    ),
    PageSpec(
        "programme_outcomes",
        "Programme outcomes",
        "pages/views/programme_outcomes.py",
        ":material/family_restroom:",
        _roles("leadership", "admin"),
        "The Supporting Families scorecard: families, needs and sustained progress.",
    ),
    PageSpec(
        "comparisons",
        "Comparisons",
        "pages/views/comparisons.py",
        ":material/compare_arrows:",
        _roles("planner", "leadership", "admin"),
        "Our figures beside the region, statistical neighbours and England.",
    ),
    PageSpec(
        "sf_claims",
        "Supporting Families claims",
        "pages/views/sf_claims.py",
        ":material/verified:",
        _roles("planner", "leadership", "admin"),
        "Claims against the target, the claim rules and the quarterly return.",
    ),
    PageSpec(
        "table_builder",
        "Table builder",
        "pages/views/table_builder.py",
        ":material/table_chart:",
        EVERYONE,
        "Build your own protected table and download it.",
    ),
    PageSpec(
        "research_extracts",
        "Research extracts",
        "pages/views/research_extracts.py",
        ":material/science:",
        # Extracts leave the portal as record-level data, so only researchers (with an
        # approved project) get them: administrators run the portal, not research.
        _roles("researcher"),
        "Request a pseudonymised, k-anonymous extract for an approved project.",
    ),
    PageSpec(
        "data_quality",
        "Data quality and privacy",
        "pages/views/data_quality.py",
        ":material/fact_check:",
        _roles("admin"),
        "Pipeline runs, quarantined rows, the audit log and the release list.",
    ),
    PageSpec(
        "governance",
        "Information governance",
        "pages/views/governance.py",
        ":material/policy:",
        _roles("admin"),
        "Approved projects, extracts, evaluation shares, erasure and restriction requests, "
        "retention.",
    ),
    PageSpec(
        "methodology",
        "Methodology",
        "pages/views/methodology.py",
        ":material/menu_book:",
        EVERYONE,
        "Definitions, disclosure control, glossary, data guidance, accessibility.",
    ),
)
PAGE_BY_KEY = {p.key: p for p in PAGES}
assert len(PAGE_BY_KEY) == len(PAGES)


def can_view(user: User | None, page_key: str) -> bool:
    """The checkpoint: True only for a signed-in user holding a role the page lists."""
    spec = PAGE_BY_KEY.get(page_key)
    if user is None or spec is None:
        return False
    return bool(user.roles & spec.roles)


def visible_pages(user: User | None) -> list[PageSpec]:
    return [p for p in PAGES if can_view(user, p.key)]
