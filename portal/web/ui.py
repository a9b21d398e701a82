"""What every page shares: the permission checkpoint, the page header, the view kept in the
address bar, and the chart, tile, table, download and report blocks.

A page starts with `ctx = ui.page("<key>")`. That call asks `access.can_view` for the
signed-in user and stops the page before anything is drawn if the answer is no; it then
shows the title, the demo notice, and the data date and release id (the release pinned in
the address, labelled as superseded when a newer one exists, else the latest), and returns
a `PageContext` whose `table()` is the page's only way to numbers.

Views and addresses (`portal.web.permalink`): a page gives each control its starting value
with `ctx.start(key, value)` (the address's value when the page was opened from a bookmark
or link, else the default) and, once its controls are drawn, writes the view back with
`ctx.keep_view(...)`, which returns the view's permalink (the same view, release pinned).
Controls are never given a default of their own, so Streamlit never sees two sources for
one widget's value.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from portal.web import access, auth, charts, data, downloads, headlines, permalink, report
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

    def measures(self) -> dict[str, data.MeasureMeta]:
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


# --- blocks ---------------------------------------------------------------------------


def headline(title: str, subtitle: str, *, level: int = 2, anchor: str | None = None) -> None:
    """A headline title (the finding) and a statistical subtitle (what, where, when).
    Level 2 under the page title; 3 inside a section (headings must not skip a level)."""
    (st.header if level == 2 else st.subheader)(title, anchor=anchor or False)
    st.caption(subtitle)


def anchor(key: str) -> str:
    """The anchor of a chart's headline (a permalink scrolls to it)."""
    return key.replace("_", "-")


def share_link(link: str, *, key: str, what: str = "chart") -> None:
    """The permalink of a view, to copy (the code block has a copy button)."""
    with st.popover(f"Link to this {what}", icon=":material/link:", key=f"{key}_link"):
        st.caption(
            f"This link opens this {what} as it is now, with this release's figures, for "
            "anyone signed in to the portal (even after a newer release)."
        )
        st.code(link, language=None, wrap_lines=True)


def chart(
    fig: go.Figure,
    shown: pl.DataFrame,
    *,
    key: str,
    title: str,
    subtitle: str,
    alt: str,
    file_name: str,
    footnotes: Sequence[str] = (),
    drawn: bool = True,
    level: int = 2,
    notes: Sequence[str] = (),
    link: str | None = None,
) -> None:
    """A chart with its headline, alt text, table view, a CSV of exactly that table and,
    for views kept in the address, its permalink. `notes` say why the chart differs from
    what was asked (a coarser grain, fewer series). `drawn=False` (every value suppressed)
    shows a notice instead of an empty chart."""
    headline(title, subtitle, level=level, anchor=anchor(key) if link else None)
    for note in notes:
        st.info(note, icon=":material/info:")
    if drawn:
        st.plotly_chart(
            fig,
            key=f"{key}_chart",
            alt=alt,
            config={"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"]},
        )
    else:
        st.info(
            "Every figure in this chart is suppressed (shown as c in the table): there are "
            "too few to publish at this level of detail. Try a longer period or fewer "
            "breakdowns.",
            icon=":material/visibility_off:",
        )
    with st.expander("Show the table and a description of the chart"):
        st.markdown(f"**Description.** {alt}")
        st.dataframe(shown, hide_index=True, key=f"{key}_table")
        if footnotes:
            notes_block(footnotes)
    with st.container(horizontal=True):
        st.download_button(
            "Download this table (CSV)",
            lambda: downloads.csv_bytes(shown),
            file_name=f"{file_name}.csv",
            mime="text/csv",
            key=f"{key}_csv",
            on_click="ignore",
            icon=":material/download:",
        )
        if link:
            share_link(link, key=key)


def notes_block(footnotes: Sequence[str]) -> None:
    st.markdown("**Notes**\n\n" + "\n".join(f"{i}. {n}" for i, n in enumerate(footnotes, 1)))


notes = notes_block


def table_downloads(
    shown: pl.DataFrame,
    table: data.ProtectedTable,
    *,
    key: str,
    file_name: str,
    subtitle: str,
    numeric: Sequence[str] | None = None,
) -> None:
    """CSV, spreadsheet (XLSX with title and notes) and JSON of the table as shown."""
    source = (
        f"Release {table.release_id}, data as at {table.data_as_at}; "
        f"disclosure control policy {table.policy_id}."
    )
    if numeric is None:
        numeric = [c for c in shown.columns if c not in _title_columns(table)]
    cols = st.columns(3)
    cols[0].download_button(
        "CSV",
        lambda: downloads.csv_bytes(shown),
        file_name=f"{file_name}.csv",
        mime="text/csv",
        key=f"{key}_csv",
        on_click="ignore",
        icon=":material/download:",
        width="stretch",
    )
    cols[1].download_button(
        "Spreadsheet (XLSX, with title and notes)",
        lambda: downloads.xlsx_bytes(
            shown,
            title=table.title,
            subtitle=subtitle,
            source=source,
            footnotes=table.footnotes,
            numeric_columns=numeric,
        ),
        file_name=f"{file_name}.xlsx",
        mime=downloads.XLSX_MIME,
        key=f"{key}_xlsx",
        on_click="ignore",
        icon=":material/download:",
        width="stretch",
    )
    cols[2].download_button(
        "JSON",
        lambda: downloads.json_bytes(
            shown,
            title=table.title,
            measure=table.measure,
            release_id=table.release_id,
            data_as_at=table.data_as_at,
            policy_id=table.policy_id,
            footnotes=table.footnotes,
        ),
        file_name=f"{file_name}.json",
        mime="application/json",
        key=f"{key}_json",
        on_click="ignore",
        icon=":material/download:",
        width="stretch",
    )


def _title_columns(table: data.ProtectedTable) -> set[str]:
    return {data.dimension_title(d) for d in table.by}


def titles(dims: Sequence[str]) -> dict[str, str]:
    return {d: data.dimension_title(d) for d in dims}


def value_title(table: data.ProtectedTable) -> str:
    if not table.is_rate:
        return f"Number of {table.unit}"
    return "Percentage" if table.rate_per == 100 else f"Rate per {table.rate_per:,}"


_value_title = value_title


def shown(
    table: data.ProtectedTable,
    dims: Sequence[str] | None = None,
    frame: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The reader's table (labels, protected counts, symbols) of a protected table, or of
    the rows of it in `frame`."""
    dims = list(table.by if dims is None else dims)
    rate_title = "Percentage" if table.rate_per == 100 else f"Rate per {table.rate_per or 0:,}"
    return headlines.shown_table(
        table.data if frame is None else frame,
        dims,
        titles(dims),
        is_rate=table.is_rate,
        rate_title=rate_title,
        count_title=f"Number of {table.unit}",
    )


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


CONTENT_DIR = Path(__file__).resolve().parent / "content"
DISCLOSURE_DOC = Path(__file__).resolve().parents[2] / "docs" / "disclosure-control.md"
# The page icon, shipped with the portal: a browser asks this server for it, never another.
ICON = str(CONTENT_DIR / "icon.svg")


def content(name: str, **values: str) -> str:
    """A markdown text shipped with the portal (portal/web/content/<name>.md)."""
    text = (CONTENT_DIR / f"{name}.md").read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def disclosure_method() -> str | None:
    """The reader's part of docs/disclosure-control.md (up to the implementation notes),
    or None when the docs are not shipped."""
    try:
        text = DISCLOSURE_DOC.read_text(encoding="utf-8")
    except OSError:
        return None
    body = text.split("\n", 1)[1] if text.startswith("# ") else text
    return body.split("\n## Secrets", 1)[0].replace("\n## ", "\n### ")


# --- chart sections: one query, one headline, one chart, its table and its CSV --------------


def _where_text(where: Mapping[str, str | Sequence[str]] | None) -> str:
    parts = [
        f"{data.dimension_title(k).lower()} {v if isinstance(v, str) else ', '.join(v)}"
        for k, v in (where or {}).items()
    ]
    return "; ".join(parts) if parts else "all localities"


def _flagged(frame: pl.DataFrame, table: data.ProtectedTable, symbol: str) -> pl.DataFrame:
    return frame.with_columns(
        headlines.suppressed(frame, is_rate=table.is_rate, symbol=symbol).alias("_c")
    )


def year_points(
    ctx: PageContext,
    measure: str,
    where: Mapping[str, str] | None = None,
    table: data.ProtectedTable | None = None,
) -> tuple[data.ProtectedTable, list[tuple[str, float | None]]]:
    """The measure's complete financial years (value, None where suppressed): what a
    headline may talk about."""
    years = table or guarded(ctx.table, measure, (FY,), where)
    complete = set(
        headlines.complete_periods(
            FY,
            years.data[FY].to_list(),
            ctx.data_as_at,
            partial=years.partial_periods.get(FY, ()),
            covers=years.covers,
        )
    )
    points = [
        p for p in headlines.series(years.data, FY, is_rate=years.is_rate) if p[0] in complete
    ]
    return years, points


def trend_chart(
    ctx: PageContext,
    measure: str,
    period: str,
    *,
    key: str,
    series: str | None = None,
    where: Mapping[str, str] | None = None,
    view: permalink.Params | None = None,
) -> None:
    """A line chart of complete periods, split by `series` if given. When most of its points
    would be suppressed it sheds all but the top five series, then moves to a coarser grain
    (month, quarter, financial year), and says so; suppressed points are marked."""
    series = series or None
    symbol = ctx.policy.symbols.confidential
    total = ctx.policy.total_label
    allowed = ctx.measures()[measure].breakdowns
    grains = [period]
    while (nxt := headlines.COARSER.get(grains[-1])) is not None and nxt in allowed:
        grains.append(nxt)
    fetched: dict[str, data.ProtectedTable] = {}
    rows: dict[str, pl.DataFrame] = {}
    for grain in grains:
        # A coarser grain is asked for only when this one is mostly suppressed.
        table = guarded(ctx.table, measure, (grain, series) if series else (grain,), where)
        fetched[grain] = table
        rows[grain] = headlines.chartable(
            table.data,
            grain,
            series,
            data_as_at=ctx.data_as_at,
            partial=table.partial_periods.get(grain, ()),
            covers=table.covers,
            total_label=total,
        )
        if not headlines.mostly_suppressed(
            rows[grain], series, is_rate=table.is_rate, symbol=symbol
        ):
            break
    plan = headlines.plan_trend(
        rows,
        period,
        series,
        is_rate=fetched[period].is_rate,
        symbol=symbol,
        series_title=f"{data.dimension_title(series).lower()} groups" if series else "series",
    )
    table = fetched[plan.period]
    grain = plan.period
    dims = (grain, series) if series else (grain,)
    periods = plan.rows[grain].unique(maintain_order=True).to_list()
    # The headline is the year-on-year finding, whatever the chart's grain: a single quarter
    # or month is too noisy to lead with.
    reuse = table if (grain == FY and series is None) else None
    _, points = year_points(ctx, measure, where, reuse)
    y = headlines.value_column(table.is_rate)
    percent = table.rate_per == 100
    x_title = headlines.PERIOD_TITLES[grain]
    split = f", by {data.dimension_title(series).lower()}" if series else ""
    left_out = list(table.partial_periods.get(grain, ()))
    complete_note = "Complete periods only" + (
        f"; {headlines.join_words(left_out)} not yet complete and left out" if left_out else ""
    )
    drawn = _flagged(plan.drawn, table, symbol)
    hidden = int(drawn["_c"].sum())
    chart(
        charts.line_figure(
            drawn,
            grain,
            y,
            series=series,
            x_title=x_title,
            y_title=value_title(table),
            percent=percent,
            flag="_c",
        ),
        shown(table, dims, plan.rows),
        key=key,
        title=headlines.trend_headline(
            table.title,
            points,
            dim=FY,
            is_rate=table.is_rate,
            unit=headlines.rate_unit(table.rate_per) if table.is_rate else "",
        ),
        subtitle=(
            f"{value_title(table)} by {x_title.lower()}{split}, "
            f"{_where_text(where)}, {headlines.span(grain, periods)}. {complete_note}."
        ),
        alt=headlines.describe_chart(
            "Line chart",
            drawn,
            grain,
            y,
            what=f"{value_title(table).lower()} ({table.title.lower()})",
            x_title=x_title,
            series_dim=series,
            percent=percent,
            suppressed_rows=hidden,
        ),
        file_name=f"{measure}-by-{'-'.join(dims)}",
        footnotes=table.footnotes,
        drawn=bool(drawn[y].is_not_null().any()),
        notes=plan.notes,
        link=None if view is None else ctx.link(view, anchor=anchor(key)),
    )


def bar_chart(
    ctx: PageContext,
    measure: str,
    dim: str,
    *,
    key: str,
    when: str,
    where: Mapping[str, str] | None = None,
    horizontal: bool = True,
    view: permalink.Params | None = None,
) -> None:
    """A bar chart of `measure` by `dim` (one category per bar; a suppressed one marked c)."""
    symbol = ctx.policy.symbols.confidential
    table = guarded(ctx.table, measure, (dim,), where)
    plotted = _flagged(table.data, table, symbol)
    y = headlines.value_column(table.is_rate)
    percent = table.rate_per == 100
    x_title = data.dimension_title(dim)
    rest = {k: v for k, v in (where or {}).items() if k != FY}
    partial = [p for vs in table.partial_periods.values() for p in vs]
    chart(
        charts.bar_figure(
            plotted,
            dim,
            y,
            x_title=x_title,
            y_title=value_title(table),
            percent=percent,
            horizontal=horizontal,
            flag="_c",
        ),
        shown(table, (dim,), plotted),
        key=key,
        title=headlines.bar_headline(
            table.title,
            table.unit,
            plotted,
            dim,
            is_rate=table.is_rate,
            rate_per=table.rate_per,
            when=when,
        ),
        subtitle=(
            f"{value_title(table)} by {x_title.lower()}, {_where_text(rest)}, {when}."
            + (f" {headlines.join_words(partial)} is not yet complete." if partial else "")
        ),
        alt=headlines.describe_chart(
            "Bar chart",
            plotted,
            dim,
            y,
            what=f"{value_title(table).lower()} ({table.title.lower()})",
            x_title=x_title,
            percent=percent,
            suppressed_rows=int(plotted["_c"].sum()),
        ),
        file_name=f"{measure}-by-{dim}",
        footnotes=table.footnotes,
        drawn=bool(plotted[y].is_not_null().any()),
        link=None if view is None else ctx.link(view, anchor=anchor(key)),
    )


@dataclass(frozen=True)
class Tile:
    measure: str
    figure: headlines.Headline


def common_period(tiles: Sequence[Tile]) -> str | None:
    """The period most tiles show (None: none has a complete year)."""
    years = Counter(t.figure.period for t in tiles if t.figure.period)
    return years.most_common(1)[0][0] if years else None


def tile_figures(ctx: PageContext, measures: Sequence[str]) -> list[Tile]:
    """Each measure's headline figure: its latest complete financial year (which can differ
    between measures: sustained progress needs six months after a year ends) and the change
    on the year before, never across a suppressed or incomplete year."""
    threshold = ctx.policy.threshold
    out = []
    for m in measures:
        if not ctx.has(m):
            continue
        table = guarded(ctx.table, m, (FY,))
        partial = table.partial_periods.get(FY, ())
        current, previous = headlines.latest_two(
            FY, table.data[FY].to_list(), ctx.data_as_at, partial=partial, covers=table.covers
        )
        out.append(
            Tile(
                m,
                headlines.headline_figure(
                    table.title,
                    table.data,
                    FY,
                    current,
                    previous,
                    is_rate=table.is_rate,
                    rate_per=table.rate_per,
                    threshold=threshold,
                    partial=partial,
                ),
            )
        )
    return out


def headline_tiles(ctx: PageContext, measures: Sequence[str], *, columns: int = 3) -> str | None:
    """Headline tiles for each measure's latest complete financial year, with the change on
    the year before; returns the year most of them show. A tile whose year differs says so
    in its label; a suppressed figure (`c`) says why in place."""
    tiles = tile_figures(ctx, measures)
    if not tiles:
        st.info("This release has none of these measures.")
        return None
    common = common_period(tiles)
    cols = st.columns(columns)
    for i, tile in enumerate(tiles):
        fig = tile.figure
        label = fig.label + (f" ({fig.period})" if fig.period and fig.period != common else "")
        with cols[i % columns].container(border=True, key=f"tile_{tile.measure}"):
            # The label as text above the figure: a metric's own label is cut to one line.
            st.markdown(f"**{label}**", help=fig.help)
            st.metric(
                label,
                fig.value,
                fig.delta,
                delta_color="off",
                delta_arrow="off" if fig.suppressed else "auto",
                label_visibility="collapsed",
            )
            if fig.note:
                st.caption(fig.note)
    return common


# --- the table builder ------------------------------------------------------------------------


def describe_query(table: data.ProtectedTable, *, columns: str | None = None) -> str:
    """The statistical subtitle of a table-builder table."""
    what = value_title(table)
    rows = [d for d in table.by if d != columns]
    dims = " and ".join(data.dimension_title(d).lower() for d in rows)
    text = f"{what}{' by ' + dims if dims else ', all'}"
    if columns:
        text += f" (rows) by {data.dimension_title(columns).lower()} (columns)"
    filters = [(k, v) for k, v in table.where if k not in table.by]
    if filters:
        text += "; " + "; ".join(
            f"{data.dimension_title(k).lower()} {', '.join(v)}" for k, v in filters
        )
    if table.data_as_at:
        text += f". Data as at {table.data_as_at:%d %B %Y}, release {table.release_id}."
    return text


def period_covered(table: data.ProtectedTable, time_dims: Sequence[str]) -> str:
    """Which time a table covers, in words: a period filter, the periods of its rows or
    columns, or every period added together; and which of them are not complete."""
    where = dict(table.where)
    partial = [p for vs in table.partial_periods.values() for p in vs]
    late = (
        f" Not yet complete: {headlines.join_words(partial)} (do not compare with whole periods)."
        if partial
        else ""
    )
    for dim in time_dims:
        if dim in where and dim not in table.by:
            values = list(where[dim])
            spans = "; ".join(headlines.period_label(dim, v) for v in values)
            return f"Period covered: {', '.join(values)} ({spans}).{late}"
    for dim in time_dims:
        if dim in table.by:
            values = [
                v
                for v in table.data[dim].unique(maintain_order=True).to_list()
                if headlines.period_bounds(dim, v)
            ]
            grain = headlines.PERIOD_TITLES[dim].lower()
            return f"Periods covered: {headlines.span(dim, values)}, by {grain}.{late}"
    if table.covers is not None:
        return (
            "Period covered: every period from "
            f"{headlines.describe_span(*table.covers)} added together (no time breakdown). "
            "Choose a financial year or quarter to see one period."
        )
    return "This measure has no time dimension."


# --- the printable report ---------------------------------------------------------------------

# Sections other parts of the portal add to the report, after the headline figures: a
# function (ctx, kind) -> report.Section or None. Issue 14's comparisons with England,
# region and statistical neighbours append theirs here when they land.
REPORT_SECTIONS: list[Callable[[PageContext, str], report.Section | None]] = []

REPORTS: dict[str, dict[str, Any]] = {
    "home": {
        "title": "Children's services: headline figures",
        "trends": (
            "contacts",
            "eh_referrals",
            "cin_referrals",
            "cp_plans_at_31_march",
            "sf_families_worked_with",
            "sf_significant_sustained_progress",
        ),
        "bars": (),
    },
    "programme": {
        "title": "Supporting Families: programme outcomes",
        "trends": (
            "sf_families_worked_with",
            "whole_family_assessments",
            "sf_significant_sustained_progress",
        ),
        "bars": (("sf_needs_at_entry", "need"), ("sf_significant_sustained_progress", "locality")),
    },
}


def _points(frame: pl.DataFrame, dim: str, table: data.ProtectedTable) -> tuple[report.Point, ...]:
    col, shown_col = headlines.value_column(table.is_rate), headlines.shown_column(table.is_rate)
    return tuple(
        report.Point(str(label), value, str(text))
        for label, value, text in frame.select(dim, col, shown_col).iter_rows()
    )


def report_document(ctx: PageContext, kind: str) -> report.Report:
    """The printable report (`kind`: "home" or "programme"), from protected tables only;
    `downloads.report_bytes` renders it (every text escaped) for the download."""
    spec = REPORTS[kind]
    policy = ctx.policy
    figures: list[report.Figure] = []
    tiles = {t.measure: t.figure for t in tile_figures(ctx, spec["trends"])}
    for m in spec["trends"]:
        if m not in tiles:
            continue
        years, points = year_points(ctx, m)
        rows = years.data.filter(pl.col(FY).is_in([p for p, _ in points]))
        fig = tiles[m]
        figures.append(
            report.Figure(
                title=years.title,
                headline=headlines.trend_headline(
                    years.title,
                    points,
                    dim=FY,
                    is_rate=years.is_rate,
                    unit=headlines.rate_unit(years.rate_per) if years.is_rate else "",
                ),
                kind="line",
                points=_points(rows, FY, years),
                value_title=value_title(years),
                x_title="Financial year",
                percent=years.rate_per == 100,
                tile=(
                    fig.value + (f" ({fig.period})" if fig.period else ""),
                    fig.delta or "",
                    fig.note or "",
                ),
                footnotes=years.footnotes,
            )
        )
    for m, dim in spec["bars"]:
        if not ctx.has(m):
            continue
        complete = ctx.complete_levels(m, FY)
        if not complete:
            continue
        year = complete[-1]
        table = guarded(ctx.table, m, (dim,), {FY: year})
        figures.append(
            report.Figure(
                title=table.title,
                headline=headlines.bar_headline(
                    table.title,
                    table.unit,
                    table.data,
                    dim,
                    is_rate=table.is_rate,
                    rate_per=table.rate_per,
                    when=year,
                ),
                kind="bar",
                points=_points(table.data, dim, table),
                value_title=value_title(table),
                x_title=data.dimension_title(dim),
                percent=table.rate_per == 100,
                footnotes=table.footnotes,
            )
        )
    sections = [s for hook in REPORT_SECTIONS if (s := hook(ctx, kind)) is not None]
    release = ctx.release
    assert release is not None
    superseded = None
    if ctx.superseded and ctx.latest is not None:
        superseded = (
            f"Superseded: release {release.release_id} has been replaced by release "
            f"{ctx.latest.release_id} (data as at {ctx.latest.data_as_at:%d %B %Y}); these "
            "are the figures as first published."
        )
    sym = policy.symbols
    doc = report.Report(
        title=spec["title"],
        subtitle=(
            "Each figure is for the latest complete financial year (April to March) of its "
            "measure, with the change on the year before. Prepared by the council's research "
            "and statistics portal."
        ),
        release_line=(
            f"Release {release.release_id} · data as at {release.data_as_at:%d %B %Y} · "
            f"disclosure control policy {release.policy_id}"
        ),
        figures=tuple(figures),
        disclosure=(
            f"Every figure in this report is protected by disclosure control ({policy.ref}): "
            f"{policy.description}",
            f"Each count may differ from the true count by up to {policy.max_noise}, and the "
            "same cell always shows the same value, so comparing tables reveals nothing more. "
            f"Counts below {policy.threshold} are shown as {sym.confidential} (confidential); "
            f"{sym.not_applicable} means not applicable, {sym.unavailable} not available. "
            "Percentages and rates are calculated from protected counts, and a percentage is "
            "never shown above 100%.",
            "People on the objections register are left out of every figure. No individual "
            "is identified in anything this report contains.",
        ),
        superseded=superseded,
        sections=tuple(sections),
        demo=ctx.config.demo,
    )
    return doc


def report_button(ctx: PageContext, kind: str) -> None:
    """One click: the printable report of this page's headline measures (built on the
    click, not on every run of the page)."""
    st.download_button(
        "Printable report (HTML, print or save as PDF)",
        lambda: downloads.report_bytes(report_document(ctx, kind)),
        file_name=f"{kind}-report-{ctx.release_id}.html",
        mime="text/html",
        key=f"report_{kind}",
        on_click="ignore",
        icon=":material/print:",
        type="primary",
    )


def frame_bar_chart(
    frame: pl.DataFrame,
    x: str,
    y: str,
    *,
    key: str,
    title: str,
    subtitle: str,
    what: str,
    series: str | None = None,
    shown: pl.DataFrame | None = None,
    file_name: str,
) -> None:
    """A bar chart of an operational table (admin page), with its table and CSV. `shown` is
    the table as published when it differs from the plotted numbers (masked small counts)."""
    chart(
        charts.bar_figure(frame, x, y, series=series, x_title=x, y_title=y, horizontal=True),
        frame if shown is None else shown,
        key=key,
        title=title,
        subtitle=subtitle,
        alt=headlines.describe_chart(
            "Bar chart", frame, x, y, what=what, x_title=x, series_dim=series
        ),
        file_name=file_name,
        level=3,
    )


def frame_table(frame: pl.DataFrame, *, key: str, file_name: str) -> None:
    """A plain table with a CSV of exactly what it shows."""
    st.dataframe(frame, hide_index=True, key=f"{key}_table")
    st.download_button(
        "Download this table (CSV)",
        lambda: downloads.csv_bytes(frame),
        file_name=f"{file_name}.csv",
        mime="text/csv",
        key=f"{key}_csv",
        on_click="ignore",
        icon=":material/download:",
    )
