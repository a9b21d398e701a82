"""What every page shares: the permission checkpoint, the page header, and the chart,
table and download blocks.

A page starts with `ctx = ui.page("<key>")`. That call asks `access.can_view` for the
signed-in user and stops the page before anything is drawn if the answer is no; it
then shows the title, the demo notice, and the data date and release id, and returns
a `PageContext` whose `table()` is the page's only way to numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from portal.web import access, auth, charts, data, downloads, headlines
from portal.web.access import User
from portal.web.config import ConfigError, PortalConfig, load_config

DEMO_NOTICE = (
    "**Demo mode.** Every figure comes from a synthetic county generated for the "
    "demonstration; no real child or family is in it. The demo accounts exist only "
    "in demo mode."
)
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


@dataclass(frozen=True)
class PageContext:
    """The signed-in user, the release the page shows, and the door to its numbers."""

    key: str
    user: User
    config: PortalConfig
    auth: data.AuthConfig
    token: str = field(repr=False)
    release: data.ReleaseRef | None = None

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
    release = guarded(data.latest_release, user.role_key, token)
    if release is None:
        hint = " Run `make demo` to publish the demo release." if config.demo else ""
        st.info(f"No release has been published yet, so there are no statistics to show.{hint}")
        if needs_release:
            st.stop()
    else:
        st.caption(
            f"Data as at **{release.data_as_at:%d %B %Y}** · Release **{release.release_id}** · "
            f"Disclosure control policy **{release.policy_id}**"
        )
    return PageContext(key, user, config, auth_config, token, release)


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


def headline(title: str, subtitle: str, *, level: int = 2) -> None:
    """A headline title (the finding) and a statistical subtitle (what, where, when).
    Level 2 under the page title; 3 inside a section (headings must not skip a level)."""
    (st.header if level == 2 else st.subheader)(title, anchor=False)
    st.caption(subtitle)


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
) -> None:
    """A chart with its headline, alt text, table view and a CSV of exactly that table.
    `drawn=False` (every value suppressed) shows a notice instead of an empty chart."""
    headline(title, subtitle, level=level)
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
            notes(footnotes)
    st.download_button(
        "Download this table (CSV)",
        lambda: downloads.csv_bytes(shown),
        file_name=f"{file_name}.csv",
        mime="text/csv",
        key=f"{key}_csv",
        on_click="ignore",
        icon=":material/download:",
    )


def notes(footnotes: Sequence[str]) -> None:
    st.markdown("**Notes**\n\n" + "\n".join(f"{i}. {n}" for i, n in enumerate(footnotes, 1)))


def table_downloads(
    shown: pl.DataFrame,
    table: data.ProtectedTable,
    *,
    key: str,
    file_name: str,
    subtitle: str,
) -> None:
    """CSV, spreadsheet (XLSX with title and notes) and JSON of the table as shown."""
    source = (
        f"Release {table.release_id}, data as at {table.data_as_at}; "
        f"disclosure control policy {table.policy_id}."
    )
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


def _value_title(table: data.ProtectedTable) -> str:
    if not table.is_rate:
        return f"Number of {table.unit}"
    return "Percentage" if table.rate_per == 100 else f"Rate per {table.rate_per:,}"


def trend_chart(
    ctx: PageContext,
    measure: str,
    period: str,
    *,
    key: str,
    series: str | None = None,
    where: Mapping[str, str] | None = None,
) -> None:
    """A line chart of complete periods, split by `series` if given."""
    dims = (period, series) if series else (period,)
    table = guarded(ctx.table, measure, dims, where)
    as_at = ctx.release.data_as_at if ctx.release else None
    periods = headlines.complete_periods(
        period, table.data[period].unique(maintain_order=True).to_list(), as_at
    )
    plotted = headlines.relabel(
        headlines.keep_rows(table.data, period, periods), [series] if series else []
    )
    # The headline is the year-on-year finding, whatever the chart's granularity: a
    # single quarter or month is too noisy to lead with.
    fy = "financial_year"
    years = (
        table if (period == fy and series is None) else guarded(ctx.table, measure, (fy,), where)
    )
    complete_years = set(headlines.complete_periods(fy, years.data[fy].to_list(), as_at))
    points = [
        p for p in headlines.series(years.data, fy, is_rate=table.is_rate) if p[0] in complete_years
    ]
    y = headlines.value_column(table.is_rate)
    percent = table.rate_per == 100
    x_title = headlines.PERIOD_TITLES[period]
    split = f", by {data.dimension_title(series).lower()}" if series else ""
    chart(
        charts.line_figure(
            plotted,
            period,
            y,
            series=series,
            x_title=x_title,
            y_title=_value_title(table),
            percent=percent,
        ),
        shown(table, dims, plotted),
        key=key,
        title=headlines.trend_headline(
            table.title,
            points,
            dim=fy,
            is_rate=table.is_rate,
            unit=headlines.rate_unit(table.rate_per) if table.is_rate else "",
        ),
        subtitle=(
            f"{_value_title(table)} by {x_title.lower()}{split}, "
            f"{_where_text(where)}, {headlines.span(period, periods)}. Complete periods only."
        ),
        alt=headlines.describe_chart(
            "Line chart",
            plotted,
            period,
            y,
            what=f"{_value_title(table).lower()} ({table.title.lower()})",
            x_title=x_title,
            series_dim=series,
            percent=percent,
        ),
        file_name=f"{measure}-by-{'-'.join(dims)}",
        footnotes=table.footnotes,
        drawn=bool(plotted[y].is_not_null().any()),
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
) -> None:
    """A bar chart of `measure` by `dim` (one category per bar)."""
    table = guarded(ctx.table, measure, (dim,), where)
    plotted = headlines.relabel(table.data, [dim])
    y = headlines.value_column(table.is_rate)
    percent = table.rate_per == 100
    x_title = data.dimension_title(dim)
    rest = {k: v for k, v in (where or {}).items() if k != "financial_year"}
    chart(
        charts.bar_figure(
            plotted,
            dim,
            y,
            x_title=x_title,
            y_title=_value_title(table),
            percent=percent,
            horizontal=horizontal,
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
        subtitle=(f"{_value_title(table)} by {x_title.lower()}, {_where_text(rest)}, {when}."),
        alt=headlines.describe_chart(
            "Bar chart",
            plotted,
            dim,
            y,
            what=f"{_value_title(table).lower()} ({table.title.lower()})",
            x_title=x_title,
            percent=percent,
        ),
        file_name=f"{measure}-by-{dim}",
        footnotes=table.footnotes,
        drawn=bool(plotted[y].is_not_null().any()),
    )


def headline_tiles(ctx: PageContext, measures: Sequence[str], *, columns: int = 3) -> str | None:
    """Metric tiles for the latest complete financial year (with the change on the year
    before); returns that year."""
    fy = "financial_year"
    tables = [guarded(ctx.table, m, (fy,)) for m in measures if ctx.has(m)]
    if not tables:
        st.info("This release has none of these measures.")
        return None
    as_at = ctx.release.data_as_at if ctx.release else None
    current, previous = headlines.latest_two(fy, tables[0].data[fy].to_list(), as_at)
    cols = st.columns(columns)
    for i, table in enumerate(tables):
        tile = headlines.headline_figure(
            table.title,
            table.data,
            fy,
            current,
            previous,
            is_rate=table.is_rate,
            rate_per=table.rate_per,
        )
        cols[i % columns].metric(
            tile.label, tile.value, tile.delta, delta_color="off", help=tile.help, border=True
        )
    return current


def describe_query(table: data.ProtectedTable) -> str:
    """The statistical subtitle of a table-builder table."""
    what = _value_title(table)
    dims = " and ".join(data.dimension_title(d).lower() for d in table.by)
    text = f"{what}{' by ' + dims if dims else ', all'}"
    filters = [(k, v) for k, v in table.where if k not in table.by]
    if filters:
        text += "; " + "; ".join(
            f"{data.dimension_title(k).lower()} {', '.join(v)}" for k, v in filters
        )
    if table.data_as_at:
        text += f". Data as at {table.data_as_at:%d %B %Y}, release {table.release_id}."
    return text


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
