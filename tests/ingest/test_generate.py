"""Tests for the synthetic household generator: contract rules, distributions, faults and file formats."""

from __future__ import annotations

import operator
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tasks.ingest import contract as c
from tasks.ingest.generate import (
    FAULT_KINDS,
    FIXABLE_FAULTS,
    FORMATS,
    META_NAMES,
    Panel,
    generate_households,
    generate_panel,
    to_source_frame,
    write_panel,
)
from tasks.ingest.generate import write_households as write

OPS = {"==": operator.eq, ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


def violations(frame: pl.DataFrame) -> pl.DataFrame:
    """Every (row, rule) the frame breaks, checked directly against the contract tables."""
    checks: dict[str, pl.Expr] = {}

    def num(name: str) -> pl.Expr:
        return pl.col(name).cast(pl.Float64, strict=False)

    for col in c.ALL_COLUMNS:
        if col.name not in frame.columns:
            continue
        raw, name = pl.col(col.name), col.name
        value = num(name) if col.dtype in ("int", "float") else raw
        if col.dtype in ("int", "float"):
            checks[f"{name}:numeric"] = raw.is_not_null() & value.is_null()
        if col.dtype == "int":
            checks[f"{name}:integer"] = value != value.round(0)
        if not col.nullable:
            checks[f"{name}:required"] = raw.is_null()
        if col.min is not None:
            checks[f"{name}:min"] = value < col.min
        if col.max is not None:
            checks[f"{name}:max"] = value > col.max
        if col.codes:
            codes = [float(x) for x in col.codes] if col.dtype != "str" else list(col.codes)
            checks[f"{name}:codes"] = raw.is_not_null() & ~value.is_in(codes)
        if col.pattern:
            checks[f"{name}:pattern"] = ~raw.str.contains(col.pattern)
    hid = pl.col("household_id")
    masked = pl.concat_str(
        hid.str.slice(0, 3), hid.str.slice(3).str.replace_all("[A-Za-z]", "X").str.replace_all("[0-9]", "9")
    )
    checks["household_id:pattern"] = ~masked.str.contains(c.HOUSEHOLD_ID_PATTERN)
    checks["household_id:district"] = hid.str.slice(0, 3) != pl.col("district").replace(c.DISTRICT_CODES)
    checks["household_id:unique"] = ~hid.is_first_distinct()
    pairs = pl.DataFrame(
        [(d, x) for d, cl in c.DISTRICT_CLUSTERS.items() for x in cl], schema=["d", "c"], orient="row"
    )
    checks["cluster:in_district"] = ~pl.concat_str("district", "cluster", separator="|").is_in(
        pairs.select(pl.concat_str("d", "c", separator="|")).to_series().to_list()
    )
    for d in c.DERIVATIONS:
        expected = pl.sum_horizontal([num(t) * k for t, k in d.terms], ignore_nulls=False)
        allowed = d.abs_tolerance + d.rel_tolerance * expected.abs()
        checks[f"derivation:{d.target}"] = (num(d.target) - expected).abs() > allowed
    for part, whole in c.PART_OF:
        checks[f"part_of:{part}<={whole}"] = num(part) > num(whole)
    for rule in c.CROSS_FIELD_RULES:
        (wc, wop, wv), (eop, ev) = rule.when, rule.expect
        checks[f"rule:{rule.name}"] = OPS[wop](num(wc), wv) & ~OPS[eop](num(rule.column), ev)
    if "officer_id" in frame.columns:
        checks["officer_id:pattern"] = ~pl.col("officer_id").str.contains(r"^FO-\d{3}$")
        checks["device_id:pattern"] = ~pl.col("device_id").str.contains(r"^WM-[0-9a-f]{6}$")
        checks["instance_id:uuid4"] = ~pl.col("instance_id").str.contains(
            r"^uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
        )
        stamp = pl.col("submitted_at").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", strict=False)
        checks["submitted_at:iso"] = stamp.is_null()
    wide = frame.with_row_index("row").select(
        "row", *(e.fill_null(False).alias(k) for k, e in checks.items())
    )
    return (
        wide.unpivot(index="row", variable_name="rule")
        .filter("value")
        .select("row", "rule")
        .sort("row", "rule")
    )


@pytest.fixture(scope="module")
def big() -> pl.DataFrame:
    return generate_households(20_000, seed=11).frame


@pytest.fixture(scope="module")
def faulty() -> tuple[pl.DataFrame, dict[int, str]]:
    batch = generate_households(2_000, seed=5, bad_rate=0.05)
    return batch.frame, batch.faults


def test_same_seed_same_frame_and_different_seeds_differ() -> None:
    a, b = generate_households(500, seed=3, bad_rate=0.1), generate_households(500, seed=3, bad_rate=0.1)
    assert_frame_equal(a.frame, b.frame)
    assert a.faults == b.faults
    other = generate_households(500, seed=4).frame
    assert not other.equals(generate_households(500, seed=3).frame)
    assert not set(other["household_id"]) & set(generate_households(500, seed=3).frame["household_id"])


def test_shape_columns_and_dtypes() -> None:
    frame = generate_households(50, seed=1).frame
    assert frame.columns == [*c.CANONICAL_NAMES, *META_NAMES]
    assert frame.height == 50
    for name in c.CANONICAL_NAMES:
        assert frame.schema[name] == c.column(name).polars_dtype, name
    bare = generate_households(7, seed=1, with_metadata=False).frame
    assert bare.columns == list(c.CANONICAL_NAMES)
    assert generate_households(0).frame.height == 0


def test_clean_batch_passes_every_contract_rule(big: pl.DataFrame) -> None:
    found = violations(big)
    assert found.is_empty(), found.group_by("rule").len()
    assert big["household_id"].n_unique() == big.height
    assert big["instance_id"].n_unique() == big.height


def test_checker_catches_a_broken_value(big: pl.DataFrame) -> None:
    broken = big.head(3).with_columns(pl.lit(-1).alias("radios_owned"), pl.lit(99.0).alias(c.TARGET))
    rules = set(violations(broken)["rule"])
    assert {"radios_owned:min", f"derivation:{c.TARGET}"} <= rules


def test_target_distribution_matches_domain(big: pl.DataFrame) -> None:
    target = big[c.TARGET]
    assert 1.85 < target.median() < 2.10
    assert 2.10 < target.mean() < 2.40
    assert 0.38 < (target < 1.77).mean() < 0.47
    rate = big.group_by("district").agg(
        (pl.col(c.TARGET) < 1.77).mean().alias("r"), pl.len().alias("n") / big.height
    )
    rates = dict(rate.select("district", "r").iter_rows())
    shares = dict(rate.select("district", "n").iter_rows())
    assert min(rates, key=rates.get) == "Kanungu" and rates["Kanungu"] < 0.3
    assert all(0.4 < rates[d] < 0.55 for d in ("Mitooma", "Rubanda", "Rukungiri"))
    for d, expected in {"Rukungiri": 0.338, "Mitooma": 0.253, "Kanungu": 0.212, "Rubanda": 0.197}.items():
        assert abs(shares[d] - expected) < 0.015, d

    def vuln(expr: pl.Expr) -> float:
        return big.filter(expr).select((pl.col(c.TARGET) < 1.77).mean()).item()

    assert vuln(pl.col("work_salaried") >= 1) < vuln(pl.col("work_salaried") == 0) - 0.2
    assert vuln(pl.col("head_sex") == 2) > vuln(pl.col("head_sex") == 1)
    assert vuln(pl.col("head_literate") == 0) > vuln(pl.col("head_literate") == 1)


def test_column_marginals_match_domain(big: pl.DataFrame) -> None:
    s = big.select(
        size_med=pl.col("household_size").median(),
        size_mean=pl.col("household_size").mean(),
        opd=pl.col("time_to_opd").median(),
        water=pl.col("time_to_water").median(),
        land=pl.col("agriculture_land").median(),
        land99=pl.col("agriculture_land").quantile(0.99),
        land_null=pl.col("agriculture_land").is_null().mean(),
        loan_null=pl.col("loan_sources").is_null().mean(),
        wilt_null=pl.col("banana_wilt_codes").is_null().mean(),
        pest_null=pl.col("organic_pesticide_ugx").is_null().mean(),
        s1=pl.col("season1_crops_planted").median(),
        male=(pl.col("head_sex") == 1).mean(),
        salaried=(pl.col("work_salaried") >= 1).mean(),
        meals2=(pl.col("daily_meals") == 2).mean(),
        compost=(pl.col("composts") == 1).mean(),
        vsla=(pl.col("vsla_profits_ugx") > 0).mean(),
    ).row(0, named=True)
    assert s["size_med"] == 5 and 4.6 < s["size_mean"] < 5.1
    assert 40 <= s["opd"] <= 60 and 25 <= s["water"] <= 35
    assert s["land"] == 1.0 and 4 < s["land99"] < 9 and 0.01 < s["land_null"] < 0.025
    assert 0.75 < s["loan_null"] < 0.81 and 0.3 < s["wilt_null"] < 0.4 and 0.79 < s["pest_null"] < 0.86
    assert s["s1"] == 3 and 0.68 < s["male"] < 0.74 and 0.06 < s["salaried"] < 0.1
    assert 0.74 < s["meals2"] < 0.81 and 0.6 < s["compost"] < 0.65 and 0.15 < s["vsla"] < 0.24
    assert big["water_control_practice"].unique().to_list() == [1]
    assert set(big.filter(pl.col("business_count").is_null())["district"]) <= {"Kanungu"}
    assert big["business_count"].null_count() > 0
    rub = big.filter(pl.col("district") == "Rubanda")
    agree = (
        (rub["household_id"].str.contains("-M-") & (rub["head_sex"] == 1))
        | (rub["household_id"].str.contains("-F-") & (rub["head_sex"] == 2))
    ).mean()
    assert 0.8 < agree < 0.9
    per_cluster = big.group_by("cluster").agg(pl.col("village").n_unique())["village"]
    assert per_cluster.min() >= 6 and per_cluster.max() <= 15
    assert big["village"].str.contains(r"_[12]$").any()
    assert big["officer_id"].n_unique() in range(25, 36)
    times = big["submitted_at"].str.to_datetime("%Y-%m-%dT%H:%M:%SZ")
    assert (times.max() - times.min()).days <= 92


def test_fault_count_and_every_kind_present(faulty: tuple[pl.DataFrame, dict[int, str]]) -> None:
    frame, faults = faulty
    assert len(faults) == 100
    assert set(faults.values()) == set(FAULT_KINDS)
    assert len(generate_households(1_000, seed=1, bad_rate=0.013).faults) == 13
    assert generate_households(100, seed=1).faults == {}
    for row in (r for r, k in faults.items() if k == "repeated_household_id"):  # same id, other answers
        twin = frame.filter(pl.col("household_id") == frame["household_id"][row])
        assert twin.height == 2 and twin[c.TARGET].n_unique() == 2


EXPECTED_RULE = {
    "sentinel_phones": "phones_owned:min",
    "household_too_large": "household_size:max",
    "land_too_large": "agriculture_land:max",
    "radios_typo": "radios_owned:max",
    "water_instant": "time_to_water:min",
    "opd_zero": "time_to_opd:min",
    "backtick_business": "business_count:numeric",
    "text_in_number": ":numeric",
    "broken_derivation": "derivation:household_income",
    "repeated_household_id": "household_id:unique",
    "bad_id_format": "household_id:pattern",
    "cluster_not_in_district": "cluster:in_district",
    "vsla_token": "rule:vsla_profit_not_token",
    "missing_required": "household_size:required",
    "no_land_but_crops": "rule:no_land_no_season1_crops",
    "formula_cell": "village:pattern",
    "lowercase_id": "household_id:pattern",
    "padded_text": ("district:codes", "village:pattern"),
}


def test_each_fault_breaks_what_it_says(faulty: tuple[pl.DataFrame, dict[int, str]]) -> None:
    frame, faults = faulty
    found = violations(frame).group_by("row").agg("rule")
    broken = {row: set(rules) for row, rules in found.iter_rows()}
    assert set(broken) == set(faults), "clean rows must pass, faulted rows must fail"
    for row, kind in faults.items():
        expected = EXPECTED_RULE[kind]
        expected = expected if isinstance(expected, tuple) else (expected,)
        assert any(e in rule for rule in broken[row] for e in expected), (kind, broken[row])
    assert frame.schema["business_count"] == pl.String and "`" in frame["business_count"].to_list()


def test_fixable_faults_pass_after_conform(faulty: tuple[pl.DataFrame, dict[int, str]]) -> None:
    frame, faults = faulty
    conformed = frame.with_columns(
        pl.col("district", "cluster", "village").str.strip_chars(), pl.col("household_id").str.to_uppercase()
    )
    still = set(violations(conformed)["row"])
    fixable = {r for r, k in faults.items() if k in FIXABLE_FAULTS}
    assert fixable and not fixable & still
    assert still == set(faults) - fixable


def read_back(path: Path, fmt: str, like: pl.DataFrame) -> pl.DataFrame:
    """Read a written file back into canonical names and the original frame's dtypes."""
    opts = {
        "csv": (",", "utf-8"),
        "tsv": ("\t", "utf-8"),
        "csv-semicolon": (";", "utf-8-sig"),
        "csv-utf16": (",", "utf-16"),
    }
    if fmt in opts:
        sep, enc = opts[fmt]
        raw = pl.from_pandas(
            pd.read_csv(path, sep=sep, encoding=enc, dtype=str, keep_default_na=False, na_values=[""])
        )
    elif fmt == "xlsx":
        raw = pl.from_pandas(
            pd.read_excel(path, sheet_name="survey", dtype=object)
            .astype(object)
            .map(lambda x: None if pd.isna(x) else str(x))
        )
    else:
        raw = {"json": pl.read_json, "jsonl": pl.read_ndjson, "parquet": pl.read_parquet}[fmt](path)
    names = c.header_aliases()
    return raw.rename({h: names[h] for h in raw.columns}).select(
        pl.col(x).cast(like.schema[x])
        if like.schema[x] != pl.Int64
        else pl.col(x).cast(pl.Float64).cast(pl.Int64)
        for x in like.columns
    )


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "kobo"])
def test_every_format_round_trips(tmp_path: Path, fmt: str) -> None:
    frame = generate_households(300, seed=9, bad_rate=0.1).frame  # faults too: text columns, commas, quotes
    assert frame.schema["business_count"] == pl.String
    path = write(frame, tmp_path / f"households.{fmt}", fmt)
    assert_frame_equal(read_back(path, fmt, frame), frame)


def test_clean_csv_round_trip_keeps_derivations_exact(tmp_path: Path) -> None:
    frame = generate_households(1_000, seed=2).frame
    back = read_back(write(frame, tmp_path / "h.csv"), "csv", frame)
    assert_frame_equal(back, frame)
    assert violations(back).is_empty()


def test_csv_header_repeats_like_the_real_file(tmp_path: Path) -> None:
    frame = generate_households(5, seed=1).frame
    header = write(frame, tmp_path / "h.csv").read_text().splitlines()[0].split(",")
    assert header.count("VSLA_Profits") == 2 and header.count("Assets") == 2
    assert header[:75] == [c.column(x).source.removesuffix(".1") for x in c.CANONICAL_NAMES]
    assert header[75:] == list(META_NAMES)
    semi = write(frame, tmp_path / "s.csv", "csv-semicolon").read_bytes()
    assert semi.startswith(b"\xef\xbb\xbfDistrict;") and b"\r\n" in semi
    assert write(frame, tmp_path / "u.csv", "csv-utf16").read_bytes().startswith(b"\xff\xfeD\x00")
    assert pd.ExcelFile(write(frame, tmp_path / "x.xlsx", "xlsx")).sheet_names == ["notes", "survey"]
    assert list(to_source_frame(frame).columns[11:13]) == ["VSLA_Profits", "VSLA_Profits.1"]


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown format"):
        write(generate_households(3).frame, tmp_path / "h.xml", "xml")


def test_kobo_export_has_groups_and_system_columns(tmp_path: Path) -> None:
    frame = generate_households(40, seed=8).frame
    kobo = pl.read_csv(write(frame, tmp_path / "k.csv", "kobo"), infer_schema=False)
    assert {"household/HouseholdSize", "income/FormalEmployment", "location/District"} <= set(kobo.columns)
    assert all("/" in h for h in kobo.columns if not h.startswith("_") and h != "deviceid")
    assert {"_uuid", "_submission_time", "_submitted_by", "__version__", "_id", "_index", "deviceid"} <= set(
        kobo.columns
    )
    assert kobo["_uuid"].to_list() == frame["instance_id"].to_list()
    assert kobo["deviceid"].to_list() == frame["device_id"].to_list()
    assert kobo["_submitted_by"].to_list() == frame["officer_id"].to_list()
    assert kobo["_submission_time"].to_list() == frame["submitted_at"].to_list()
    assert kobo["__version__"].to_list() == frame["app_version"].to_list()
    assert kobo["_index"].cast(pl.Int64).to_list() == list(range(1, 41))
    assert {"savings/VSLA_Profits", "savings/VSLA_Profits.1", "meta/deprecatedID"} <= set(kobo.columns)
    sizes = kobo["household/HouseholdSize"].cast(pl.Int64)
    assert sizes.to_list() == frame["household_size"].to_list()
    incomes = kobo["income/HHIncome+Consumption+Residues/Day"].cast(pl.Float64)
    assert incomes.to_list() == frame[c.TARGET].to_list()


def test_non_money_columns_predict_vulnerability_moderately() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_score
    from threadpoolctl import threadpool_limits

    frame = generate_households(5_000, seed=21).frame
    cols = c.model_input_columns()
    x = frame.select(pl.col(n).rank("dense") if frame.schema[n] == pl.String else pl.col(n) for n in cols)
    y = (frame[c.TARGET] < 1.77).to_numpy()
    model = HistGradientBoostingClassifier(max_iter=60, early_stopping=False, random_state=0)
    with threadpool_limits(1):  # OpenMP threads crawl on a busy 2-core machine; one thread is steady
        auc = cross_val_score(model, x.to_pandas().astype(float).to_numpy(), y, cv=5, scoring="roc_auc")
    assert 0.7 < float(np.mean(auc)) < 0.9


# ---- panels: the same households over several survey rounds ----------------------------------------

STATUS_RANK = {
    s: i for i, s in enumerate(reversed(c.PROGRESS_STATUSES))
}  # 0 Severely Struggling .. 3 On Track


def statuses(frame: pl.DataFrame) -> pl.DataFrame:
    """Each household's status rank, computed here from the frame's own target column."""
    cuts = [1.25, 1.77, 2.15]
    return frame.select("household_id", rank=pl.col(c.TARGET).cut(cuts, left_closed=True).to_physical())


@pytest.fixture(scope="module")
def panel() -> Panel:
    return generate_panel(20_000, 2, seed=13)


@pytest.fixture(scope="module")
def long_panel() -> Panel:
    return generate_panel(3_000, 4, seed=6, bad_rate=0.03, first_round=date(2024, 11, 20), months_between=6)


def test_panel_ids_persist_and_new_ids_are_unique(panel: Panel) -> None:
    first, second = (r.frame for r in panel.rounds)
    before, after = set(first["household_id"]), set(second["household_id"])
    assert (
        first["household_id"].n_unique() == first.height
        and second["household_id"].n_unique() == second.height
    )
    assert len(before & after) >= 0.94 * len(before)
    new = after - before
    assert 0.03 * 20_000 <= len(new) <= 0.06 * 20_000
    assert not violations(second.filter(pl.col("household_id").is_in(list(new)))).height
    stable = first.join(second, on="household_id", suffix="_2")
    assert (stable["head_sex"] == stable["head_sex_2"]).all() and (
        stable["district"] == stable["district_2"]
    ).all()
    size = (stable["household_size_2"] - stable["household_size"]).abs()
    assert size.max() == 1 and 0.03 < (size == 1).mean() < 0.15
    moved = stable.filter(pl.col("village") != pl.col("village_2"))
    assert 0.005 < moved.height / stable.height < 0.02
    assert (moved["cluster"] != moved["cluster_2"]).all()
    assert set(moved["household_id"]) == set(panel.truth.filter("moved")["household_id"])
    assert set(second.filter(pl.col("household_id").is_in(list(new)))["village"]) <= set(first["village"])


def test_panel_shares_of_stay_improve_fall_back_not_found_and_new(panel: Panel) -> None:
    first, second = (statuses(r.frame) for r in panel.rounds)
    pairs = first.join(second, on="household_id", how="left", suffix="_2")
    step = pairs["rank_2"].cast(pl.Int64) - pairs["rank"].cast(pl.Int64)
    n = first.height
    shares = {
        "stay": (step == 0).sum() / n,
        "improve": (step == 1).sum() / n,
        "fall back": (step == -1).sum() / n,
        "not found": step.is_null().sum() / n,
        "new": second.join(first, on="household_id", how="anti").height / n,
    }
    ranges = {
        "stay": (0.65, 0.75),
        "improve": (0.15, 0.20),
        "fall back": (0.05, 0.10),
        "not found": (0.03, 0.06),
        "new": (0.03, 0.06),
    }
    for kind, (lo, hi) in ranges.items():
        assert lo <= shares[kind] <= hi, (kind, shares[kind])
    assert (step.drop_nulls().abs() <= 1).all(), "a household moves one status at most per round"
    assert 0.65 <= (step == 0).sum() / step.count() <= 0.75  # also of the households found again


def test_panel_truth_transitions_equal_a_crosstab_of_the_frames(panel: Panel) -> None:
    first, second = (r.frame.to_pandas() for r in panel.rounds)
    bins, names = [-np.inf, 1.25, 1.77, 2.15, np.inf], list(reversed(c.PROGRESS_STATUSES))
    for frame in (first, second):
        frame["status"] = pd.cut(frame[c.TARGET], bins, right=False, labels=names).astype(str)
    both = first.merge(second, on="household_id", suffixes=("_1", "_2"))
    expected = pd.crosstab(both["status_1"], both["status_2"])
    got = panel.transitions(*panel.labels).drop_nulls().to_pandas()
    got = got.pivot(index="before", columns="after", values="households").fillna(0).astype(int)
    got.index.name, got.columns.name = "status_1", "status_2"
    pd.testing.assert_frame_equal(got.loc[expected.index, expected.columns], expected, check_dtype=False)
    missing = panel.transitions(*panel.labels).filter(pl.col("after").is_null())["households"].sum()
    assert missing == len(set(first["household_id"]) - set(second["household_id"]))
    for r in panel.rounds:  # one truth row per (household, round), the status of the file's own target
        truth = panel.truth.filter(pl.col("round") == r.label).sort("household_id")
        mine = r.frame.select("household_id", c.progress_status_expr(pl.col(c.TARGET)).alias("s"))
        assert truth["household_id"].to_list() == mine.sort("household_id")["household_id"].to_list()
        assert truth["progress_status"].to_list() == mine.sort("household_id")["s"].to_list()


def test_panel_derivations_exact_in_every_round_and_faults_only_where_injected(long_panel: Panel) -> None:
    assert long_panel.labels == ("2024-Q4", "2025-Q2", "2025-Q4", "2026-Q2")
    for r in long_panel.rounds:
        clean = r.frame.with_row_index("row").filter(~pl.col("row").is_in(list(r.faults))).drop("row")
        found = violations(clean)
        assert found.is_empty(), (r.label, found.group_by("rule").len())
        assert len(r.faults) == round(0.03 * r.frame.height) and set(violations(r.frame)["row"]) == set(
            r.faults
        )
        assert r.frame.columns == [*c.CANONICAL_NAMES, *META_NAMES]
        ugx = clean.select(pl.col(x).cast(pl.Float64) * c.UGX_PER_USD / 500 for x in c.income_columns())
        assert all(((s - s.round(0)).abs() < 1e-6).all() for s in ugx), "money is recorded in whole 500 UGX"
    truth = long_panel.truth
    assert truth.select("household_id", "round").is_unique().all()
    assert truth.height == sum(r.frame.height for r in long_panel.rounds)
    ever = truth.group_by("household_id").agg(pl.col("round").n_unique())["round"]
    assert ever.max() == 4 and (ever < 4).sum() > 0  # most come back every time; some miss a round or join


def test_panel_submissions_fall_inside_their_round_window(long_panel: Panel) -> None:
    ids: list[str] = []
    for r in long_panel.rounds:
        at = r.frame["submitted_at"].str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC")
        day = at.dt.date()
        assert day.min() >= r.start and day.max() < r.end, r.label
        assert (r.end - r.start).days <= 42
        quarter = at.dt.year().cast(pl.String) + "-Q" + at.dt.quarter().cast(pl.String)
        assert quarter.unique().to_list() == [r.label]
        ids += r.frame["instance_id"].to_list()
    assert len(ids) == len(set(ids))
    assert long_panel.rounds[0].start == date(2024, 11, 20) and long_panel.rounds[0].end == date(2025, 1, 1)
    assert long_panel.rounds[1].start == date(2025, 5, 20) and long_panel.rounds[1].end == date(2025, 7, 1)
    yearly = generate_panel(50, 3, seed=1)
    assert yearly.labels == ("2025-Q1", "2026-Q1", "2027-Q1")
    assert [(r.start, r.end) for r in yearly.rounds][1] == (date(2026, 1, 1), date(2026, 2, 12))


def test_panel_is_deterministic_and_round_one_is_generate_households() -> None:
    a, b = generate_panel(800, 3, seed=4, bad_rate=0.05), generate_panel(800, 3, seed=4, bad_rate=0.05)
    for x, y in zip(a.rounds, b.rounds, strict=True):
        assert_frame_equal(x.frame, y.frame)
        assert x.faults == y.faults and x.label == y.label
    assert_frame_equal(a.truth, b.truth)
    other = generate_panel(800, 3, seed=5, bad_rate=0.05)
    assert not other.rounds[1].frame.equals(a.rounds[1].frame)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    batch = generate_households(800, 4, 0.05, collection_start=start, collection_days=42)
    assert_frame_equal(a.rounds[0].frame, batch.frame)
    assert a.rounds[0].faults == batch.faults


def test_panel_refuses_impossible_arguments() -> None:
    with pytest.raises(ValueError, match="at least 1 household"):
        generate_panel(0, 2)
    with pytest.raises(ValueError, match="at least 1 household and 1 round"):
        generate_panel(10, 0)
    with pytest.raises(ValueError, match="its own quarter"):
        generate_panel(10, 2, months_between=2)
    with pytest.raises(ValueError, match="bad_rate"):
        generate_panel(10, 2, bad_rate=1.5)


def test_write_panel_names_files_by_round_and_leaves_nothing_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = generate_panel(60, 2, seed=2)
    written = write_panel(small, tmp_path / "panel", "kobo")
    assert [w.path.name for w in written] == ["households-2025-Q1.csv", "households-2026-Q1.csv"]
    assert [pl.read_csv(w.path).height for w in written] == [w.rows for w in written]
    assert sorted(p.name for p in (tmp_path / "panel").iterdir()) == [w.path.name for w in written]
    calls: list[Path] = []

    def second_write_fails(frame: pl.DataFrame, path: Path, fmt: str = "csv") -> Path:
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        return write(frame, path, fmt)

    monkeypatch.setattr("tasks.ingest.generate.write_households", second_write_fails)
    with pytest.raises(OSError, match="disk full"):
        write_panel(small, tmp_path / "broken", "csv")
    assert not (tmp_path / "broken").exists()
    with pytest.raises(ValueError, match="unknown format"):
        write_panel(small, tmp_path / "xml", "xml")
    assert not (tmp_path / "xml").exists()
