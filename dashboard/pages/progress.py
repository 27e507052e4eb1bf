"""Progress: how households seen in two survey rounds moved, by place; who fell back; who was found again."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
import streamlit as st

from dashboard import auth, charts, cube, data, labels, progress_data
from tasks.ingest import progress
from tasks.ingest.households import STATUS_ORDER
from tasks.model.predictions import RISK_BANDS
from tasks.protection.users import Action

auth.require(Action.READ_ALL)
st.title("Progress")
rt = data.runtime()
minimum = rt.settings.min_cell_size
hidden = f"<{minimum}"
version = cube.version(rt)
known = cube.rounds()  # collection order, cached per catalog version

if len(known) < 2:
    so_far = f"there is one so far, `{known[0]}`" if known else "there is none yet"
    st.info(
        f"**Progress needs two survey rounds**, and {so_far}. Upload the follow-up survey on the Upload page "
        "with its *Survey round* filled in (for example `2026-Q2`), or run `rtv ingest FILE --round 2026-Q2`. "
        "The households seen in both rounds then appear here, with how their status moved.",
        icon=":material/info:",
    )
    if auth.allowed(Action.UPLOAD):
        st.page_link("pages/upload.py", label="Upload a survey file", icon=":material/upload_file:")
    st.stop()


def shown(n: int | None, share: float | None = None, *, signed: bool = False) -> str:
    """A count with its share beside it, or the suppression mark when the cell is hidden (null)."""
    if n is None:
        return hidden
    sign = "+" if signed and n > 0 else ""
    return f"{sign}{n:,}" + ("" if share is None else f" ({sign}{share:.0%})")


def texts(frame: pl.DataFrame, cells: dict[str, str | None], signed: tuple[str, ...] = ()) -> pl.DataFrame:
    """Count columns as text with their share beside them (`cells`: count → its share column, or None)."""
    return frame.with_columns(
        pl.Series(
            count,
            [
                shown(n, s, signed=count in signed)
                for n, s in zip(
                    frame[count].to_list(),
                    frame[share].to_list() if share else [None] * frame.height,
                    strict=True,
                )
            ],
            dtype=pl.String,
        )
        for count, share in cells.items()
    )


with st.container(border=True):
    c1, c2, c3 = st.columns(3)
    from_round = c1.selectbox("From round", known, index=0, key="pg_from")
    to_round = c2.selectbox("To round", known, index=len(known) - 1, key="pg_to")
    if from_round == to_round:
        st.warning("Pick two different rounds: progress compares a household's visits in two rounds.")
        st.stop()
    everything = progress_data.comparison(rt, from_round, to_round, version)
    district = c3.selectbox(
        "District",
        [None, *everything.districts()],
        format_func=lambda d: "All districts" if d is None else d,
        key="pg_district",
    )
view = everything.within(district)
if known.index(from_round) > known.index(to_round):
    st.caption(f"{from_round} was collected after {to_round}: this comparison runs backwards in time.")
auth.record_view_once("progress", {"rounds": [from_round, to_round]})

# ---- headline figures -------------------------------------------------------------------------------------
top = progress.summary(view.moves)
both = top["both"]
m1, m2, m3, m4 = st.columns(4)
m1.metric(
    labels.label("both"),
    shown(None if both < minimum else both),
    border=True,
    help=f"Households with a counted visit in {from_round} and in {to_round}",
)
for column, name, n, what in (
    (m2, "improved", top["improved"], "a better observed ProgressStatus"),
    (m3, "worsened", top["worsened"], "a worse observed ProgressStatus"),
    (m4, "unchanged", top["unchanged"], "the same observed ProgressStatus"),
):
    column.metric(
        name.capitalize(),
        shown(None if n < minimum else n, n / both if both else None),
        border=True,
        help=f"Households seen in both rounds with {what} in {to_round} than in {from_round}; the share is of "
        "the households seen in both",
    )
if both == 0:
    st.warning(
        f"No household{'' if district is None else f' of {district}'} was seen in both {from_round} and "
        f"{to_round}: the cohort coverage below shows where the follow-up visits are missing."
    )

# ---- transitions ------------------------------------------------------------------------------------------
st.subheader("Transitions")
st.caption(
    f"Households seen in both rounds: rows are their category in {from_round}, columns in {to_round}; each "
    "cell gives the households and the share of its row. Categories run worst first, so cells right of the "
    f"diagonal improved and cells left of it worsened. Cells under {minimum} households show {hidden}."
)
status_cells = progress.suppress(
    progress.matrix(progress.table(view.moves, "status_from", "status_to", STATUS_ORDER), STATUS_ORDER),
    minimum,
    progress.MATRIX_CELLS,
)
bands_worst_first = tuple(reversed(RISK_BANDS))
band_cells = progress.suppress(
    progress.matrix(progress.table(view.moves, "band_from", "band_to"), bands_worst_first),
    minimum,
    progress.MATRIX_CELLS,
)
left, right = st.columns(2)
for place, cells, title, axis in (
    (left, status_cells, "Observed ProgressStatus", "Status"),
    (right, band_cells, "Predicted risk band", "Risk band"),
):
    if cells.height:
        place.plotly_chart(
            charts.transition_heatmap(
                cells, title, f"{axis} in {from_round}", f"{axis} in {to_round}", hidden
            ),
            key=f"pg_{axis.lower().replace(' ', '_')}",
        )
    else:
        place.info(f"{title}: no household seen in both rounds has one in both.")

versions = progress.model_versions(view.versions, (from_round, to_round))
note = progress.version_note(view.versions, from_round, to_round)
if note:
    right.warning(note, icon=":material/compare_arrows:")
else:
    [only] = versions["model_version"].unique().to_list()
    right.caption(f"Both rounds were scored by model v{only}: the risk bands compare like with like.")
right.dataframe(
    versions,
    hide_index=True,
    column_config={
        "survey_round": labels.label("survey_round"),
        "model_version": labels.label("model_version"),
        "visits": st.column_config.NumberColumn(labels.label("visits"), format="%d"),
    },
)


def wide(cells: pl.DataFrame, axis: str) -> pl.DataFrame:
    """A transition matrix as a table: one row per earlier category, one column per later one."""
    text = texts(cells, {"households": "share"})
    return text.pivot(on="to", index="from", values="households").rename({"from": axis})


with st.expander("Transitions as tables"):
    st.dataframe(wide(status_cells, labels.label("status_from")), hide_index=True, key="pg_status_table")
    st.dataframe(wide(band_cells, labels.label("band_from")), hide_index=True, key="pg_band_table")

# ---- by place ---------------------------------------------------------------------------------------------
st.subheader("By district, cluster and village")
level = st.radio("Group by", list(progress.LEVELS), format_func=labels.label, horizontal=True, key="pg_level")
keys = list(progress.LEVELS[level])
places = progress.suppress(progress.by_place(view.places, level), minimum, progress.PLACE_CELLS)
st.caption(
    f"Households seen in both rounds, at their place in {from_round}. Moved out of vulnerability: Struggling "
    f"or Severely Struggling in {from_round}, At Risk or On Track in {to_round}; fell back: the reverse; net: "
    f"moved out minus fell back. Shares are of the households seen in both. Cells under {minimum} households "
    f"show {hidden}, and so does a net that would reveal one."
)
if places.height and places.height <= 40:
    named = places.with_columns(pl.concat_str([pl.col(k) for k in keys], separator=" / ").alias("place"))
    st.plotly_chart(
        charts.moved_bars(named, "place", f"Moved out and fell back per {labels.label(level).lower()}"),
        key="pg_places_chart",
    )
place_table = texts(
    places,
    {"both": None, "moved_out": "moved_out_share", "fell_back": "fell_back_share", "net": "net_share"},
    signed=("net",),
).select(*keys, "both", "moved_out", "fell_back", "net")
st.dataframe(
    place_table,
    hide_index=True,
    height=min(400, 36 + 35 * max(place_table.height, 1)),
    column_config={c: labels.label(c) for c in place_table.columns},
    key="pg_places",
)

# ---- who fell back ----------------------------------------------------------------------------------------
fell = view.fell_back.with_columns(progress.reference(pl.col("household")).alias("household_ref"))
st.subheader(f"Households that fell back ({fell.height:,})")
st.caption(
    f"At Risk or On Track in {from_round}, Struggling or Severely Struggling in {to_round}; the place is where "
    f"they were seen in {from_round}."
    + (
        f" The first {progress_data.SHOWN_ROWS:,} are shown; an export holds all."
        if fell.height > progress_data.SHOWN_ROWS
        else ""
    )
)
LIST_COLUMNS = ("household", "household_ref", "district", "cluster", "village", "status_from", "status_to")
if fell.height:
    reveal = auth.reveals_pii()
    page = progress_data.identified(rt, fell.head(progress_data.SHOWN_ROWS), reveal=reveal)
    if reveal:
        auth.record("decrypted", "fell_back", {"rows": page.height, "purpose": "view"})
    st.dataframe(
        page.select(LIST_COLUMNS),
        hide_index=True,
        column_config={c: labels.label(c) for c in LIST_COLUMNS},
        key="pg_fell_back",
    )
    if auth.allowed(Action.EXPORT):
        actor = auth.name()
        detail = {"rounds": [from_round, to_round], "district": district}
        columns = progress_data.headings(*LIST_COLUMNS, "ingestion_id", "source_row")

        def _export(fmt: str) -> Callable[[], bytes]:
            return lambda: progress_data.export(
                rt, fell, columns, fmt, actor=actor, reveal=reveal, target="fell_back", detail=detail
            )

        e1, e2, _ = st.columns([1, 1, 2])
        e1.download_button(
            "Export CSV",
            _export("csv"),
            file_name="fell-back.csv",
            mime="text/csv",
            icon=":material/download:",
            on_click="ignore",
            key="pg_export_csv",
        )
        e2.download_button(
            "Export Excel",
            _export("xlsx"),
            file_name="fell-back.xlsx",
            mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            icon=":material/table:",
            on_click="ignore",
            key="pg_export_xlsx",
        )
else:
    st.caption("No household seen in both rounds fell back.")

# ---- cohort coverage --------------------------------------------------------------------------------------
st.subheader("Cohort coverage")
cohort = progress.suppress(progress.coverage(view.places), minimum, progress.COVERAGE_CELLS)
seen, found = int(view.places["seen_first"].sum()), int(view.places["found_again"].sum())
st.caption(
    f"Households seen in {from_round}, by the village they were seen in, and how many were found again in "
    f"{to_round}: {shown(found if found >= minimum else None, found / seen if seen else None)} of "
    f"{shown(seen if seen >= minimum else None)} in all. The villages with the lowest coverage come first: "
    f"that is where follow-up visits are missing. Cells under {minimum} households show {hidden}."
)
coverage_table = texts(
    cohort.sort("coverage", *progress.PLACE, nulls_last=True),
    {"seen_first": None, "found_again": "coverage"},
).select(*progress.PLACE, "seen_first", "found_again")
st.dataframe(
    coverage_table,
    hide_index=True,
    height=min(400, 36 + 35 * max(coverage_table.height, 1)),
    column_config={c: labels.label(c) for c in coverage_table.columns},
    key="pg_coverage",
)
