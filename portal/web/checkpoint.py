"""The permission checkpoint every page passes first, the page header, and the view kept
in the address bar.

A page starts with `ctx = ui.page("<key>")`. That call asks `access.can_view` for the
signed-in user and stops the page before anything is drawn if the answer is no; it then
shows the title, the demo notice, and the data date and release id (the release pinned in
the address, labelled as superseded when a newer one exists, else the latest), and returns
a `PageContext` whose `table()` is the page's only way to numbers. `guarded` turns a data
call's failure into a readable stop (or back to sign-in when the session has ended).

Views and addresses (`portal.web.permalink`): a page gives each control its starting value
with `ctx.start(key, value)` (the address's value when the page was opened from a bookmark
or link, else the default) and, once its controls are drawn, writes the view back with
`ctx.keep_view(...)`, which returns the view's permalink (the same view, release pinned).
Controls are never given a default of their own, so Streamlit never sees two sources for
one widget's value.

The widgets pages draw with are in `portal.web.widgets` (blocks) and `portal.web.sections`
(chart sections, tiles, the table builder's texts, the report); `portal.web.ui` gathers
all three under the one name pages use.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import streamlit as st

from portal.web import access, auth, data, headlines, permalink
from portal.web.access import User
from portal.web.config import ConfigError, PortalConfig, load_config

DEMO_NOTICE = (
    "**Demo mode.** Every figure comes from a synthetic county generated for the "
    "demonstration; no real child or family is in it. The demo accounts exist only "
    "in demo mode."
)
FY = "financial_year"
# The "all" choice of a control ("All localities", "No breakdown"): an empty string, not
# None, which a select box would show as "Choose an option".
ALL = ""
log = logging.getLogger(__name__)


def config_or_stop() -> PortalConfig:
    try:
        return load_config()
    except ConfigError as exc:
        st.error("The portal is not configured correctly. Ask an administrator to fix:")
        st.code("\n".join(exc.problems), language=None)
        st.stop()


def _stop(message: str) -> NoReturn:
    st.error(message)
    st.stop()


def service_or_stop(config: PortalConfig) -> data.AuthConfig:
    """How users sign in, from the release service; stops the page (with a reason an
    administrator can act on) when the service cannot be reached or disagrees about demo
    mode."""
    try:
        auth_config = data.auth_config()
    except data.DataUnavailableError as exc:
        log.error("release service: %s", exc)
        _stop(
            f"The portal cannot reach its release service ({exc}). Ask an administrator "
            "to start it (`portal up` starts both)."
        )
    if auth_config.demo != config.demo:
        which = "the release service" if auth_config.demo else "this portal"
        _stop(
            f"DEMO MODE REFUSED: only {which} is in demo mode. Demo mode needs both "
            "(`portal up --demo`), and neither may run it beside a production configuration."
        )
    return auth_config


def session_ended() -> NoReturn:
    """The service says the session is over: forget it and show the sign-in page."""
    auth.forget()
    st.session_state[auth.SESSION_ENDED] = True
    st.rerun()


def url_params() -> permalink.Params:
    """The view parameters of the address this page was opened at."""
    try:
        query = {k: st.query_params.get_all(k) for k in st.query_params}
    except Exception:  # no script run behind this call
        return {}
    return permalink.read(query)


@dataclass(frozen=True)
class PageContext:
    """The signed-in user, the release the page shows, and the door to its numbers."""

    key: str
    user: User
    config: PortalConfig
    auth: data.AuthConfig
    token: str = field(repr=False)
    release: data.ReleaseRef | None = None
    # The newest release (None: none yet); differs from `release` when the address pins an
    # older one.
    latest: data.ReleaseRef | None = None
    url: permalink.Params = field(default_factory=dict)  # the address's view parameters

    @property
    def role_key(self) -> str:
        return self.user.role_key

    @property
    def contact(self) -> str:
        return self.auth.contact

    @property
    def policy(self) -> data.Policy:
        return guarded(data.policy, self.role_key, self.token)

    @property
    def release_id(self) -> str:
        if self.release is None:
            _stop("No release has been published yet.")
        return self.release.release_id

    @property
    def pinned(self) -> bool:
        """The address names the release (a permalink), so the view stays on it."""
        return permalink.one(self.url, "release") == (self.release and self.release.release_id)

    @property
    def superseded(self) -> bool:
        return bool(self.release and self.latest and self.release != self.latest)

    @property
    def data_as_at(self) -> Any:
        return self.release.data_as_at if self.release else None

    def table(
        self,
        measure: str,
        by: Sequence[str] = (),
        where: Mapping[str, str | Sequence[str]] | None = None,
        *,
        margins: bool = False,
        release_id: str | None = None,
    ) -> data.ProtectedTable:
        """A protected table (cached for users with the same roles)."""
        return data.protected_table(
            self.role_key,
            self.token,
            release_id or self.release_id,
            measure,
            tuple(by),
            data.normalise_where(where),
            margins,
        )

    def measures(self) -> Mapping[str, data.MeasureMeta]:
        return guarded(data.release_measures, self.role_key, self.token, self.release_id)

    def levels(self, measure: str, dim: str) -> list[str]:
        """The row labels of `measure` by `dim` (as published)."""
        return self.table(measure, (dim,)).data[dim].to_list()

    def complete_levels(
        self, measure: str, dim: str, where: Mapping[str, str] | None = None
    ) -> list[str]:
        """The periods of `measure` by `dim` that are complete (ended by the data date, not
        listed as incomplete by the table, inside the measure's coverage)."""
        table = guarded(self.table, measure, (dim,), where)
        return headlines.complete_periods(
            dim,
            table.data[dim].to_list(),
            self.data_as_at,
            partial=table.partial_periods.get(dim, ()),
            covers=table.covers,
        )

    def previous_release(self) -> data.ReleaseRef | None:
        return guarded(data.previous_release, self.role_key, self.token, self.release_id)

    def has(self, measure: str) -> bool:
        """Whether this release publishes `measure` (older releases may lack newer ones)."""
        return measure in self.measures()

    def table_or_none(
        self, measure: str, by: Sequence[str] = (), *, release_id: str | None = None
    ) -> data.ProtectedTable | None:
        """A protected table, or None where that release does not have the measure."""
        try:
            return self.table(measure, by, release_id=release_id)
        except LookupError:
            return None

    # -- the view in the address bar ----------------------------------------------------------

    def start(self, key: str, value: Any) -> None:
        """Give the control `key` its starting value, once (later runs keep what the user
        chose). Call it before drawing the control, and give the control no default."""
        if key not in st.session_state:
            st.session_state[key] = value

    def keep_view(self, params: permalink.Params, *, anchor: str | None = None) -> str:
        """Write the view into the address bar (the release only when the address pinned
        it, so a bookmark follows the latest release) and return its permalink (the release
        pinned)."""
        here = permalink.view_with(
            params, release=self.release_id if self.pinned and self.release else None
        )
        try:
            current = permalink.read({k: st.query_params.get_all(k) for k in st.query_params})
            if current != here:
                st.query_params.from_dict(here)
        except Exception:  # noqa: S110 - no browser behind this run: nothing to keep
            pass
        return self.link(params, anchor=anchor)

    def body(self, draw: Any) -> None:
        """Draw the page's controls and what they show as a fragment: a change to one of
        its controls reruns only `draw`, not the whole app (navigation, sidebar, header),
        so the browser redraws only what the change can alter. Each fragment run first
        asks the service again whether the session is still open (the full run's check
        does not run), and a page that has ended reruns in full, which shows sign-in."""

        def run() -> None:
            if auth.current_user(self.auth) is None or auth.current_token() != self.token:
                st.rerun()
            draw()

        st.fragment(run)()

    def link(self, params: permalink.Params, *, anchor: str | None = None) -> str:
        """The permalink of a view of this page: its address with the release pinned."""
        base = _page_address(self.key)
        pinned = permalink.pinned(params, self.release_id) if self.release else params
        return permalink.address(base, pinned, anchor=anchor)


def pick(asked: Any, options: Sequence[Any], default: Any = None) -> Any:
    """`asked` (from the address) if it is one of `options`, else `default` if it is, else
    the first option: a link can never put a control into a state it does not offer."""
    if asked in options:
        return asked
    if default in options:
        return default
    return options[0] if options else None


def keep_valid(key: str, options: Sequence[Any], *, many: bool = False) -> None:
    """Drop a control's kept value when its options no longer offer it (a column breakdown
    just chosen as a row, say), before the control is drawn."""
    if key not in st.session_state:
        return
    value = st.session_state[key]
    if many:
        kept = [v for v in value or [] if v in options]
        if kept != list(value or []):
            st.session_state[key] = kept
    elif value not in options:
        del st.session_state[key]


def _page_address(key: str) -> str:
    """This page's address as the browser sees it (scheme, host, path), or its path."""
    path = "/" if key == "home" else f"/{key}"
    try:
        url = st.context.url
    except Exception:
        url = None
    if not url:
        return path
    # st.context.url is the address of the page being run, without query or anchor.
    root = url.split("://", 1)
    host = root[1].split("/", 1)[0] if len(root) == 2 else ""
    return f"{root[0]}://{host}{path}" if host else path


def page(key: str, *, title: str | None = None, needs_release: bool = True) -> PageContext:
    """The checkpoint every page passes first."""
    config = config_or_stop()
    auth_config = service_or_stop(config)
    user = auth.current_user(auth_config)
    token = auth.current_token()
    if not access.can_view(user, key) or token is None:
        _stop("You do not have access to this page.")
    assert user is not None
    spec = access.PAGE_BY_KEY[key]
    st.title(title or spec.title)
    if config.demo:
        st.warning(DEMO_NOTICE, icon=":material/science:")
    data.remember_dimensions(guarded(data.dimensions, user.role_key, token))
    params = url_params()
    latest = guarded(data.latest_release, user.role_key, token)
    release = latest
    asked = permalink.one(params, "release")
    if asked and latest is not None and asked != latest.release_id:
        found = guarded(data.release_ref, user.role_key, token, asked)
        if found is None:
            st.warning(
                f"Release {asked} is not available (it was withdrawn, or the address is "
                "wrong), so this page shows the latest release.",
                icon=":material/history:",
            )
            params = permalink.view_with(params, release=None)
        else:
            release = found
    ctx = PageContext(key, user, config, auth_config, token, release, latest, params)
    if release is None:
        hint = " Run `make demo` to publish the demo release." if config.demo else ""
        st.info(f"No release has been published yet, so there are no statistics to show.{hint}")
        if needs_release:
            st.stop()
        return ctx
    st.caption(
        f"Data as at **{release.data_as_at:%d %B %Y}** · Release **{release.release_id}** · "
        f"Disclosure control policy **{release.policy_id}**"
    )
    if ctx.superseded and latest is not None:
        st.warning(
            f"**Superseded release.** This view shows release {release.release_id} (data as at "
            f"{release.data_as_at:%d %B %Y}) exactly as it was published. It has been "
            f"superseded by release {latest.release_id} (data as at "
            f"{latest.data_as_at:%d %B %Y}), whose figures may differ.",
            icon=":material/history:",
        )
        if st.button("Show the latest figures for this view", key="to_latest"):
            del st.query_params["release"]
            st.rerun()
    return ctx


def guarded(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a data call; stop the page with a readable message if the service cannot serve
    numbers (unreachable, no release, a measure missing from this release), and go back to
    sign-in if the session has ended."""
    try:
        return fn(*args, **kwargs)
    except data.SessionEndedError:
        session_ended()
    except data.DataUnavailableError as exc:
        log.warning("release service: %s", exc)
        _stop(f"Statistics are unavailable: {exc}")
    except PermissionError:
        _stop("You do not have access to this page.")
    except LookupError as exc:
        _stop(f"This release does not have that measure: {exc}")


def no_access() -> None:
    """The only page for a signed-in identity that maps to no portal role."""
    config = config_or_stop()
    auth_config = service_or_stop(config)
    user = auth.current_user(auth_config)
    st.title("No access")
    who = f" ({user.user_id})" if user else ""
    st.error(
        f"You are signed in{who}, but your account has no role in this portal. "
        f"To ask for access, contact {auth_config.contact}."
    )


def not_your_page(spec: access.PageSpec) -> Any:
    """The page shown at a page's address to a signed-in user whose roles may not see it:
    "no access", with the user still signed in and the navigation still there."""

    def page() -> None:
        config = config_or_stop()
        auth_config = service_or_stop(config)
        st.title(spec.title)
        st.error(
            "You do not have access to this page. Your roles do not include it; to ask for "
            f"access, contact {auth_config.contact}."
        )

    page.__name__ = f"no_access_{spec.key}"
    return page
