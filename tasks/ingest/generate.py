"""Synthetic RTV households that follow the contract's distributions and exact derivations, plus faults."""

from __future__ import annotations

import calendar
import codecs
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import polars as pl
import xlsxwriter

from tasks.ingest import contract as c

FAULT_KINDS: tuple[str, ...] = (
    "sentinel_phones",
    "household_too_large",
    "land_too_large",
    "radios_typo",
    "water_instant",
    "opd_zero",
    "backtick_business",
    "text_in_number",
    "broken_derivation",
    "repeated_household_id",
    "bad_id_format",
    "cluster_not_in_district",
    "vsla_token",
    "missing_required",
    "no_land_but_crops",
    "formula_cell",
    "lowercase_id",
    "padded_text",
)
FIXABLE_FAULTS = frozenset({"lowercase_id", "padded_text"})  # a conform step repairs these
META_NAMES = ("instance_id", "submitted_at", "officer_id", "device_id", "app_version")
FORMATS = ("csv", "csv-semicolon", "csv-utf16", "tsv", "xlsx", "json", "jsonl", "parquet", "kobo")
QUARTER_START = datetime(2025, 7, 1, tzinfo=UTC)  # fixed, so a seed always gives the same timestamps
RATE = c.UGX_PER_USD
NAMES = tuple(c.DISTRICT_CLUSTERS)
# District -> (share of households, median target USD/day, log-sd). Shares are domain.md §1; medians and
# spreads are chosen so each district's vulnerable rate and mean target land near §3's table.
DISTRICTS = {
    "Rukungiri": (0.338, 1.79, 0.52),
    "Mitooma": (0.253, 1.68, 0.58),
    "Kanungu": (0.212, 2.28, 0.34),
    "Rubanda": (0.197, 1.74, 0.48),
}
# Invented village names are built from Runyankore-like syllables; never names from the real file.
_ONSETS = ("Ka", "Ki", "Kya", "Nya", "Bu", "Mu", "Ru", "Rwa", "Bi", "Ny", "Ishe", "Ihu", "Oru", "Ma")
_SYLLABLES = (
    "ba",
    "bu",
    "ga",
    "ge",
    "ha",
    "hi",
    "ka",
    "ko",
    "ku",
    "ma",
    "mbe",
    "mi",
    "na",
    "nda",
    "ndu",
    "nga",
    "ngo",
    "nya",
    "ra",
    "re",
    "ri",
    "ro",
    "sha",
    "ta",
    "to",
    "tu",
    "ye",
    "zi",
    "bwe",
    "gye",
)
_FIRST = (
    "AGA",
    "ASI",
    "BEA",
    "BEN",
    "CHR",
    "DAN",
    "DOR",
    "EDI",
    "ELI",
    "EMM",
    "FAI",
    "FRA",
    "GAD",
    "GLO",
    "HAR",
    "IRE",
    "ISA",
    "JOA",
    "JOS",
    "JUL",
    "KED",
    "LIL",
    "MAR",
    "MOS",
    "NAB",
    "NAT",
    "OLI",
    "PAT",
    "PEA",
    "RIT",
    "ROS",
    "SAM",
    "SAR",
    "SIM",
    "TEO",
    "VIC",
    "WIN",
    "YOW",
    "ZAI",
)  # invented first-name prefixes for ids
_PRACTICES = (
    ("latrine_constructed", 0.98),
    ("tippy_tap_available", 0.34),
    ("soap_ash_available", 0.25),
    ("standard_hangline", 0.81),
    ("kitchen_house", 0.92),
    ("bathroom_constructed", 0.78),
    ("swept_compound", 0.86),
    ("dish_rack_present", 0.79),
    ("non_bio_waste_managed", 0.68),
    ("applies_liquid_manure", 0.21),
    ("soil_management", 0.9936),
    ("postharvest_storage", 0.595),
)  # household practices (0/1) and the share that has each
_NULLABLE = {
    "agriculture_land": 0.016,
    "business_count": 0.03,
    "loan_sources": 0.779,
    "banana_wilt_codes": 0.314,
    "organic_pesticide_ugx": 0.825,
}  # null shares, domain.md §1


@dataclass
class GeneratedBatch:
    """A canonical frame and the fault injected in each bad row (0-based index -> kind)."""

    frame: pl.DataFrame
    faults: dict[int, str] = field(default_factory=dict)


@cache
def _geography() -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Invented villages (~10 per cluster, some split _1/_2) grouped by district; the same for every seed."""
    rng, rows, seen = np.random.default_rng(1011), [], set()
    for d, clusters in c.DISTRICT_CLUSTERS.items():
        for cluster in clusters:
            for _ in range(rng.integers(7, 13)):
                name = str(rng.choice(_ONSETS)) + "".join(rng.choice(_SYLLABLES, rng.integers(1, 3)))
                if name in seen:
                    continue
                seen.add(name)
                split = rng.random() < 0.1
                rows += [(d, cluster, f"{name}_{k}" if split else name) for k in ((1, 2) if split else (0,))]
    geo = pl.DataFrame(
        rows, schema=["district", "cluster", "village"], orient="row", infer_schema_length=None
    )
    counts = np.array([(geo["district"] == x).sum() for x in NAMES])
    return (
        geo.with_columns(effect=pl.Series(rng.normal(0, 0.3, geo.height))),
        counts,
        np.cumsum(counts) - counts,
    )


def _floor(x: npt.NDArray[np.float64], step: float = 500.0) -> npt.NDArray[np.float64]:
    """Round down to whole steps of UGX: enumerators record round shilling amounts."""
    return np.floor(np.maximum(x, 0) / step) * step


def generate_households(
    rows: int,
    seed: int = 0,
    bad_rate: float = 0.0,
    *,
    with_metadata: bool = True,
    collection_start: datetime = QUARTER_START,
    collection_days: int = 92,
) -> GeneratedBatch:
    """Generate `rows` households deterministically from `seed`; a `bad_rate` share get one fault each.

    Submission times fall on the `collection_days` days from `collection_start`.
    """
    frame, rng = _clean_households(rows, seed, with_metadata, collection_start, collection_days)
    frame, faults = _inject(frame, rng, bad_rate)
    return GeneratedBatch(frame, faults)


def _clean_households(
    rows: int, seed: int, with_metadata: bool, start: datetime, days: int
) -> tuple[pl.DataFrame, np.random.Generator]:
    """Fault-free households and the generator's random state, which the faults then continue from."""
    n, rng, (geo, counts, starts) = max(rows, 1), np.random.default_rng(seed), _geography()
    d = rng.choice(4, n, p=[DISTRICTS[x][0] for x in NAMES])
    v = starts[d] + (rng.random(n) * counts[d]).astype(np.int64)
    w = (
        rng.standard_normal(n) + geo["effect"].to_numpy()[v]
    ) / 1.044  # latent wealth (household + village), sd 1

    def cut(slope: float, *shares: float) -> npt.NDArray[np.int64]:
        """Category 0..k-1 with exactly these shares, ranked by wealth plus logistic noise."""
        latent: npt.NDArray[np.float64] = slope * w + rng.logistic(size=n)
        return np.searchsorted(np.quantile(latent, np.cumsum(shares)[:-1]), latent).astype(np.int64)

    female = cut(-0.3, 0.713, 0.287)
    land = np.exp(0.35 * w + 0.7 * rng.standard_normal(n))
    land = np.clip(np.where(rng.random(n) < 0.86, np.round(land * 4) / 4, np.round(land, 1)), 0.1, 50)
    land[rng.random(n) < 0.01] = 0.0  # landless households plant no seasonal crops (cross-field rule)
    s1 = (1 + rng.binomial(7, np.clip(0.29 + 0.04 * w, 0.1, 0.6))) * (rng.random(n) > 0.015) * (land > 0)
    s2 = rng.binomial(8, np.clip(0.35 + 0.04 * w, 0.1, 0.6)) * (rng.random(n) > 0.04) * (land > 0)
    perennial = cut(0.3, 0.047, 0.953)
    perennial[(s1 + s2) == 0] = 1  # everyone farms something, so own consumption has a source
    salaried, business = cut(1.2, 0.923, 0.068, 0.009), cut(0.5, 0.793, 0.2, 0.007)
    casual, saves, stock = cut(-0.4, 0.566, 0.434), cut(0.3, 0.594, 0.406), cut(0.5, 0.2, 0.8)

    # Target per day: lognormal around the district median, driven by wealth, plus a salary/business bump.
    med, sd = (np.array([DISTRICTS[x][i] for x in NAMES])[d] for i in (1, 2))
    z = 0.78 * w + 0.62 * rng.standard_normal(n) + 0.5 * (salaried > 0) + 0.15 * (business > 0)
    annual = 365 * med * np.exp(sd * np.clip(z, -3.5, 3.5))
    # Cash share of the total, about 55%, higher with a salary or a business.
    cash = annual / (
        1 + np.exp(-0.2 - 0.8 * (salaried > 0) - 0.3 * (business > 0) - 0.6 * rng.standard_normal(n))
    )

    # Split cash income over the household's active lines (gamma weights), in whole 500 UGX.
    u = rng.random((n, 6))
    active = np.stack(
        [
            salaried > 0,
            business > 0,
            (casual == 1) & (u[:, 0] > 0.05),
            u[:, 1] < 0.727,
            u[:, 2] < 0.065 * np.exp(0.4 * w),
            ((s1 + s2) > 0) & (u[:, 3] < 0.98),
            (perennial == 1) & (u[:, 4] < 0.89),
            (stock == 1) & (u[:, 5] < 0.35),
        ],
        axis=1,
    )
    weights = active * np.array([4.0, 1.2, 1.0, 0.25, 0.5, 1.0, 1.0, 0.4]) * rng.gamma(2.0, size=(n, 8))
    weights[weights.sum(axis=1) == 0, 3] = 1.0  # nobody lives on nothing: fall back to gifts
    share = weights / weights.sum(axis=1, keepdims=True)
    lines = np.where(weights > 0, np.maximum(_floor(cash[:, None] * RATE * share), 500), 0)
    ugx = dict(
        zip(
            (
                "formal_employment_income",
                "business_income",
                "casual_labour_income",
                "remittances_income",
                "rent_income",
                "seasonal",
                "perennial_crop_income",
                "livestock_income",
            ),
            lines.T,
            strict=True,
        )
    )
    crop = ugx.pop("seasonal")

    def season_split(total: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
        """Split a seasonal amount between season 1 and 2, all of it to the season that had crops."""
        first = np.where(s2 == 0, total, np.where(s1 == 0, 0, _floor(total * rng.uniform(lo, hi, n))))
        return first, total - first

    # Own consumption = unsold harvest + livestock eaten - livestock sold; production >= sales keeps it > 0.
    own = np.round((annual - cash) * RATE)
    eaten = np.where(rng.random(n) < 0.25 + 0.15 * stock, _floor(own * rng.uniform(0.03, 0.3, n)), 0)
    unsold = np.maximum(_floor(own - eaten), 500) + ugx["livestock_income"]
    per_unsold = np.where((s1 + s2) == 0, unsold, perennial * _floor(unsold * rng.uniform(0.3, 0.6, n)))
    sold_by_season, kept_by_season = (
        season_split(crop, 0.45, 0.75),
        season_split(unsold - per_unsold, 0.45, 0.7),
    )
    for s, sold, kept in zip((1, 2), sold_by_season, kept_by_season, strict=True):
        veg = _floor((sold + kept) * rng.uniform(0.02, 0.2, n)) * (rng.random(n) < 0.67 - 0.12 * (s - 1))
        ugx |= {
            f"season{s}_crop_income": sold,
            f"season{s}_agric_value": sold + kept,
            f"season{s}_vegetable_value": veg,
            f"season{s}_vegetable_income": _floor(np.minimum(veg, sold) * rng.uniform(0.2, 1.0, n))
            * (rng.random(n) < 0.45 - 0.05 * (s - 1)),
        }
    ugx |= {
        "perennial_agric_value": ugx["perennial_crop_income"] + per_unsold,
        "livestock_consumed_value": eaten,
        "livestock_asset_value": stock
        * np.clip(
            np.round(  # median ~700,000 UGX of animals
                np.exp(np.log(7e5) + 0.5 * w + 0.75 * rng.standard_normal(n)), -4
            ),
            10_000,
            12_000_000,
        ),
    }
    vsla = (
        (saves == 1)
        * (rng.random(n) < 0.47)
        * np.clip(  # about half the savers report a profit
            np.round(np.exp(np.log(1e5) + 0.4 * w + 0.9 * rng.standard_normal(n)), -3), 5000, 1_500_000
        )
    )
    usd = {k: x / RATE for k, x in ugx.items()} | {"vsla_profits_ugx": vsla, "vsla_profits_usd": vsla / RATE}
    _derive(usd)

    opd = np.clip(50 * np.exp(-0.1 * w + 0.8 * rng.standard_normal(n)), 1, 300)
    water = np.clip(30 * np.exp(-0.1 * w + 0.75 * rng.standard_normal(n)), 1, 360)
    a, b = (
        rng.choice(10, n, p=[0.055, 0.12, 0.01, 0.01, 0.035, 0.01, 0.535, 0.2, 0.02, 0.005]) for _ in range(2)
    )
    codes = pl.Series(c.LOAN_SOURCE_CODES)
    flags = {k: cut(0.3, 1 - p, p) for k, p in _PRACTICES}
    frame = pl.DataFrame(
        {
            "household_size": np.minimum(
                1 + rng.poisson(4.1 * np.exp(0.12 * w - 0.01) * (1 - 0.2 * female)), 20
            ),
            "time_to_opd": np.maximum(
                np.where(rng.random(n) < 0.95, np.round(opd / 5) * 5, np.round(opd)), 1
            ),
            "time_to_water": np.where(
                rng.random(n) < 0.92, np.maximum(np.round(water / 5) * 5, 1), np.round(water, 1)
            ),
            "agriculture_land": land,
            "season1_crops_planted": s1,
            "season2_crops_planted": s2,
            "perennial_crops_grown": np.minimum(perennial * (1 + rng.negative_binomial(3, 0.6, n)), 20),
            **usd,
            "head_sex": 1 + female,
            "head_literate": cut(0.6, 0.3, 0.7),
            "wall_material": 1 + cut(0.7, 0.711, 0.289),
            "radios_owned": cut(0.4, 0.343, 0.645, 0.012),
            "phones_owned": cut(0.6, 0.148, 0.557, 0.274, 0.016, 0.005),
            "business_count": business,
            "work_casual": casual,
            "work_salaried": salaried,
            "saves_in_vsla": saves,
            "perennial_cropping": perennial,
            "daily_meals": 1 + cut(0.5, 0.021, 0.777, 0.202),
            "fertilizer_type": np.where(
                cut(0.3, 0.538, 0.462) == 1, rng.choice([1, 2, 3], n, p=[0.845, 0.108, 0.047]), 99
            ),
            "composts": cut(0.2, 0.313, 0.062, 0.625) * 0.5,
            "water_control_practice": np.ones(n, np.int64),
            **flags,
            "organic_pesticide_ugx": (rng.random(n) > 0.64)
            * rng.choice(  # round UGX amounts, mostly 0
                [2e3, 3e3, 5e3, 1e4, 1.5e4, 2e4, 2.5e4, 3e4, 4e4, 5e4, 1e5, 2.5e5],
                n,
                p=[0.04, 0.06, 0.07, 0.11, 0.09, 0.24, 0.04, 0.09, 0.05, 0.09, 0.08, 0.04],
            ),
        }
    ).with_columns(
        district=pl.Series(NAMES).gather(d),
        cluster=geo["cluster"].gather(v),
        village=geo["village"].gather(v),
        loan_sources=pl.when(pl.lit(rng.random(n) < 0.04) & pl.lit(a != b))
        .then(pl.concat_str(codes.gather(np.minimum(a, b)), codes.gather(np.maximum(a, b)), separator=" "))
        .otherwise(codes.gather(a)),
        banana_wilt_codes=pl.Series(["2", "1 2", "1", "2 3", "1 2 3", "3", "1 3"]).gather(
            rng.choice(7, n, p=np.array([2356, 112, 52, 16, 8, 4, 1]) / 2549)
        ),
    )
    # IDs: DDD-VVV-XXX-<K|M|R>digits, or RUB-VVV-{F|M}-digits (F/M agrees with hhh_sex 85% of the time); the
    # digits start with a tag derived from the seed, so different seeds do not collide.
    tag = 1000 + (seed * 2654435761) % 9000
    digits = pl.lit(pl.Series(tag * 10 ** max(4, len(str(n))) + np.arange(n)).cast(pl.String))
    sex = pl.lit(pl.Series(["M", "F"]).gather(np.where(rng.random(n) < 0.85, female, 1 - female)))
    given = pl.lit(pl.Series(_FIRST).gather(rng.integers(0, len(_FIRST), n)))
    dist, vvv = pl.col("district"), pl.col("village").str.slice(0, 3).str.to_uppercase()
    code = dist.replace_strict(c.DISTRICT_CODES)
    nulls = rng.random((n, 5)) < np.array(list(_NULLABLE.values()))
    nulls[:, 1] &= d == NAMES.index("Kanungu")  # business_number is missing only in Kanungu
    nulls[:, 3] |= perennial == 0  # no perennials, no banana wilt answer
    frame = frame.with_columns(
        *(pl.when(pl.lit(nulls[:, i])).then(None).otherwise(x).alias(x) for i, x in enumerate(_NULLABLE)),
        pl.when(dist == "Rubanda")
        .then(pl.concat_str(code, vvv, sex, digits, separator="-"))
        .otherwise(
            pl.concat_str(code, vvv, given, pl.concat_str(dist.str.slice(0, 1), digits), separator="-")
        )
        .alias("household_id"),
    ).select(pl.col(x).cast(c.column(x).polars_dtype) for x in c.CANONICAL_NAMES)
    if with_metadata:
        frame = frame.hstack(_metadata(rng, d, start, days))
    return frame.head(rows), rng


def _derive(usd: dict[str, npt.NDArray[np.float64]]) -> None:
    """Add every derived money column to `usd` from its terms, in formula order, so each is exact."""
    for der in c.DERIVATIONS:
        if der.target in usd or der.target == "assets_ugx":
            continue
        (first, k0), *rest = der.terms
        total = usd[first] / c.DAYS_PER_YEAR if abs(k0 - 1 / c.DAYS_PER_YEAR) < 1e-15 else usd[first] * k0
        for term, k in rest:
            total = total + usd[term] if k > 0 else total - usd[term]
        usd[der.target] = total
    usd["assets_ugx"] = np.round(usd["livestock_asset_value"] * RATE)


@cache
def _officers() -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """30 field officers grouped by district (10/8/6/6), each with one device."""
    rng, counts = np.random.default_rng(7), np.array([10, 8, 6, 6])
    ids = rng.choice(np.arange(100, 1000), counts.sum(), replace=False)
    officers = pl.DataFrame(
        {
            "officer_id": [f"FO-{i}" for i in ids],
            "device_id": [f"WM-{x:06x}" for x in rng.integers(0, 16**6, len(ids))],
        }
    )
    return officers, counts, np.cumsum(counts) - counts


def _metadata(
    rng: np.random.Generator, d: np.ndarray, start: datetime = QUARTER_START, days: int = 92
) -> pl.DataFrame:
    """Seeded uuid4 instance ids, working-hour UTC times on `days` days from `start`, officers and app versions."""
    n, (officers, counts, starts) = len(d), _officers()
    raw = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    raw[:, 6], raw[:, 8] = (raw[:, 6] & 0x0F) | 0x40, (raw[:, 8] & 0x3F) | 0x80  # uuid4 version and variant
    hx = pl.col("hex")
    secs = int(start.timestamp()) + rng.integers(0, days, n) * 86400 + rng.integers(4 * 3600, 15 * 3600, n)
    picked: npt.NDArray[np.int64] = starts[d] + (rng.random(n) * counts[d]).astype(np.int64)
    return (
        officers[picked]
        .with_columns(
            hex=pl.Series(np.frombuffer(raw.tobytes().hex().encode(), dtype="S32")).cast(pl.String),
            secs=pl.Series(secs),
            app_version=pl.Series(rng.choice(["2.3.0", "2.3.1", "2.4.0"], n, p=[0.2, 0.6, 0.2])),
        )
        .select(
            instance_id=pl.concat_str(
                pl.lit("uuid:"),
                pl.concat_str(
                    [hx.str.slice(a, b - a) for a, b in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))],
                    separator="-",
                ),
            ),
            submitted_at=pl.from_epoch("secs", "s").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            officer_id="officer_id",
            device_id="device_id",
            app_version="app_version",
        )
    )


# what a fault writes into a column: one value for every row, or one per row
_Fault: TypeAlias = pl.Series | npt.NDArray[Any] | list[str] | str | int | float | None


def _inject(
    frame: pl.DataFrame, rng: np.random.Generator, bad_rate: float
) -> tuple[pl.DataFrame, dict[int, str]]:
    """Give round(bad_rate * rows) random rows (never row 0) exactly one fault each."""
    n = frame.height
    k = min(round(bad_rate * n), n - 1)
    if k <= 0:
        return frame, {}
    rows = np.sort(rng.choice(np.arange(1, n), k, replace=False))
    kinds = np.resize(np.array(FAULT_KINDS), k)  # every kind appears once there are enough bad rows
    rng.shuffle(kinds)
    cols, is_clean = {x: frame[x].clone() for x in frame.columns}, np.ones(n, dtype=bool)
    is_clean[rows] = False
    clean = np.flatnonzero(is_clean)
    fixed: dict[str, tuple[str, _Fault]] = {
        "sentinel_phones": ("phones_owned", -99),
        "household_too_large": ("household_size", 27),
        "land_too_large": ("agriculture_land", 90.0),
        "radios_typo": ("radios_owned", 21),
        "water_instant": ("time_to_water", 0.001),
        "opd_zero": ("time_to_opd", 0.0),
        "backtick_business": ("business_count", "`"),
        "missing_required": ("household_size", None),
        "formula_cell": ("village", '=HYPERLINK("http://x","y")'),
        "vsla_token": ("vsla_profits_ugx", 1.0),
        "no_land_but_crops": ("agriculture_land", 0.0),
    }

    def put(name: str, idx: np.ndarray, values: _Fault) -> None:
        s = cols[name]
        if isinstance(values, str) or (isinstance(values, list) and isinstance(values[0], str)):
            s = s.cast(pl.String)  # a text fault turns that column into a String column
        cols[name] = s.scatter(idx, values)

    for kind in FAULT_KINDS:
        idx = rows[kinds == kind]
        if not len(idx):
            continue
        ids = cols["household_id"].gather(idx)
        if kind in fixed:
            put(fixed[kind][0], idx, fixed[kind][1])
        if kind == "vsla_token":  # a 1 UGX slip: the USD copy and the saver flag stay consistent
            put("vsla_profits_usd", idx, 1.0 / RATE)
            put("saves_in_vsla", idx, 1)
        elif kind == "no_land_but_crops":
            put(
                "season1_crops_planted",
                idx,
                np.maximum(cols["season1_crops_planted"].gather(idx).to_numpy(), 2),
            )
        elif kind == "text_in_number":  # "about 200" typed into a money column
            which = rng.choice(["remittances_income", "business_income", "casual_labour_income"], len(idx))
            for name in np.unique(which):
                sub = idx[which == name]
                put(
                    name,
                    sub,
                    [f"about {max(10, round(x / 10) * 10)}" for x in cols[name].gather(sub).cast(float)],
                )
        elif kind == "broken_derivation":  # the total is off; its dependants are left as they were
            put("household_income", idx, cols["household_income"].gather(idx) + 50.0)
        elif kind == "repeated_household_id":  # an earlier clean row's id, with this row's own answers
            put(
                "household_id",
                idx,
                cols["household_id"].gather(
                    clean[(rng.random(len(idx)) * np.searchsorted(clean, idx)).astype(np.int64)]
                ),
            )
        elif kind == "bad_id_format":  # a one-letter name part (`MIT-NYA-B-M8841`) or an embedded comma
            short = ids.str.replace(r"^(\w{3}-\w{3}-\w)\w+-", "${1}-")
            comma = ids.str.replace(r"^(\w{3}-\w{3}-[^-]+)-", "${1},-")
            put(
                "household_id",
                idx,
                pl.select(
                    pl.when(pl.lit(rng.random(len(idx)) < 0.5) & (short != ids)).then(short).otherwise(comma)
                ).to_series(),
            )
        elif kind == "cluster_not_in_district":
            others = [
                [x for k2, cl in c.DISTRICT_CLUSTERS.items() if k2 != k1 for x in cl]
                for k1 in cols["district"].gather(idx)
            ]
            put("cluster", idx, [o[rng.integers(0, len(o))] for o in others])
        elif kind == "lowercase_id":  # `Kan-kih-mac-k4633` style, or all lower case
            put(
                "household_id",
                idx,
                [x.capitalize() if i % 2 else x for i, x in enumerate(ids.str.to_lowercase())],
            )
        elif kind == "padded_text":
            name = "district" if rng.random() < 0.5 else "village"
            put(name, idx, [f"  {x} " for x in cols[name].gather(idx)])
    return pl.DataFrame(list(cols.values())), {int(i): str(x) for i, x in zip(rows, kinds, strict=True)}


def to_source_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Rename canonical columns to the exact source headers (`VSLA_Profits.1` for the second copy)."""
    return frame.rename({x: c.source_name(x) for x in frame.columns if x in c.CANONICAL_NAMES})


def _kobo_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """A KoboToolbox-style export: group-prefixed questions, `deviceid`, a meta group and system columns."""
    groups = (
        (3, "location"),
        (5, "household"),
        (7, "access"),
        (11, "agriculture"),
        (13, "savings"),
        (46, "income"),
        (51, "household"),
        (56, "livelihood"),
        (58, "agriculture"),
        (59, "household"),
        (99, "practices"),
    )
    system = {
        "deviceid": "device_id",
        "_uuid": "instance_id",
        "_submission_time": "submitted_at",
        "_submitted_by": "officer_id",
        "__version__": "app_version",
    }
    return frame.select(
        *(
            pl.col(col.name).alias(f"{next(g for end, g in groups if i < end)}/{col.source}")
            for i, col in enumerate(c.COLUMNS)
            if col.name in frame.columns
        ),
        pl.lit(None, pl.String).alias("meta/deprecatedID"),
        *(pl.col(src).alias(dst) for dst, src in system.items() if src in frame.columns),
        (pl.int_range(pl.len()) + 100_001).alias("_id"),
        (pl.int_range(pl.len()) + 1).alias("_index"),
    )


def write_households(frame: pl.DataFrame, path: Path, fmt: str = "csv") -> Path:
    """Write the canonical frame in the real file's layout (exact source headers) in one of `FORMATS`."""
    path, src = Path(path), to_source_frame(frame)
    # The real CSV repeats `VSLA_Profits` and `Assets`; pandas' `.1` names exist only after reading it.
    header = [h.removesuffix(".1") if h in ("VSLA_Profits.1", "Assets.1") else h for h in src.columns]
    text = {
        "csv": (",", "\n", b""),
        "tsv": ("\t", "\n", b""),
        "csv-semicolon": (";", "\r\n", codecs.BOM_UTF8),
    }
    if fmt in text:
        sep, eol, bom = text[fmt]
        with path.open("wb") as fh:
            fh.write(bom + (sep.join(header) + eol).encode())
            src.write_csv(fh, include_header=False, separator=sep, line_terminator=eol)
    elif fmt == "csv-utf16":  # polars writes UTF-8 only: transcode slice by slice to bound memory
        with path.open("wb") as fh:
            fh.write(codecs.BOM_UTF16_LE + (",".join(header) + "\n").encode("utf-16-le"))
            for part in src.iter_slices(200_000):
                fh.write(part.write_csv(include_header=False).encode("utf-16-le"))
    elif fmt in ("kobo", "json", "jsonl", "parquet"):
        {
            "kobo": lambda: _kobo_frame(frame).write_csv(path),
            "json": lambda: src.write_json(path),
            "jsonl": lambda: src.write_ndjson(path),
            "parquet": lambda: src.write_parquet(path, compression="zstd"),
        }[fmt]()
    elif fmt == "xlsx":  # literal text only: a '=' cell must stay text, never become a live formula
        book = xlsxwriter.Workbook(
            path, {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
        )
        notes = book.add_worksheet("notes")
        notes.write(0, 0, "Synthetic RTV household survey from tasks.ingest.generate: no real households.")
        notes.write(1, 0, "Money is USD per year except VSLA_Profits, Assets and pesticide spend (UGX).")
        sheet = book.add_worksheet("survey")
        sheet.write_row(0, 0, header)
        for r, row in enumerate(src.iter_rows(), start=1):
            sheet.write_row(r, 0, row)
        book.close()
    else:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    return path


# ---- panels: the same households surveyed round after round ----------------------------------------

ROUND_WINDOW_DAYS = 42  # fieldwork of a round: its first day plus up to six weeks
# Status cut-offs 1.25, 1.77, 2.15 from the contract; a status index runs 0 Severely Struggling .. 3 On Track.
_CUTS = np.array([t for _, t in reversed(c.STATUS_THRESHOLDS[:-1])])
# Band edges (USD/day) per status index. The bottom and top ones are only where drawn targets stop: the
# generator's households lie inside them, and 25/day keeps every money line far below the contract maximum.
_BAND_LO = np.array([0.1, 1.25, 1.77, 2.15])
_BAND_HI = np.array([1.25, 1.77, 2.15, 25.0])
# A new target lies this far inside its band: rounding the rescaled money lines to 500 UGX moves the
# target by at most ~0.005/day, so the status the round intended is the status the file carries.
_MARGIN = 0.01
# Shares of the previous roster per round. Improve 18% and fall back 8% of returning households leave
# ~74% keeping their status; of all previous households (4.5% not found) that is ~71% / 17% / 8%.
_IMPROVE, _FALL_BACK, _NOT_FOUND, _NEW, _MOVE = 0.18, 0.08, 0.045, 0.045, 0.01
_CASH = (
    "formal_employment_income",
    "business_income",
    "casual_labour_income",
    "remittances_income",
    "rent_income",
)
# Farm money moves together: sales, production and vegetables are nested (PART_OF), and livestock sales
# are counted inside unsold production, so one factor keeps every part below its whole.
_FARM = (
    "season1_crop_income",
    "season2_crop_income",
    "season1_agric_value",
    "season2_agric_value",
    "season1_vegetable_value",
    "season2_vegetable_value",
    "season1_vegetable_income",
    "season2_vegetable_income",
    "perennial_crop_income",
    "perennial_agric_value",
    "livestock_income",
)
_FARM_OUTPUT = ("season1_agric_value", "season2_agric_value", "perennial_agric_value")
_SALES = ("season1_crop_income", "season2_crop_income", "perennial_crop_income", "livestock_income")
_EATEN = "livestock_consumed_value"


@dataclass(frozen=True)
class PanelRound:
    """One survey round: its label, collection window [start, end), canonical frame and injected faults."""

    label: str
    start: date
    end: date
    frame: pl.DataFrame
    faults: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Panel:
    """Rounds of the same households, and the truth: each (household_id, round) with its generated status.

    The truth is taken before faults are injected, so it names every household by its real id; `moved` marks
    a household that changed village (same district) since the previous round.
    """

    rounds: tuple[PanelRound, ...]
    truth: pl.DataFrame

    @property
    def labels(self) -> tuple[str, ...]:
        """Round labels in collection order."""
        return tuple(r.label for r in self.rounds)

    def round(self, label: str) -> PanelRound:
        """The round with this label (KeyError when there is none)."""
        for r in self.rounds:
            if r.label == label:
                return r
        raise KeyError(label)

    def transitions(self, before: str, after: str) -> pl.DataFrame:
        """Households per (status in `before`, status in `after`); null where a household is not in that round."""
        a, b = (
            self.truth.filter(pl.col("round") == x).select("household_id", pl.col("progress_status").alias(y))
            for x, y in ((before, "before"), (after, "after"))
        )
        return (
            a.join(b, on="household_id", how="full", coalesce=True)
            .group_by("before", "after")
            .agg(households=pl.len())
            .sort("before", "after", nulls_last=True)
        )


@dataclass(frozen=True)
class WrittenRound:
    """A round file written by `write_panel`."""

    label: str
    path: Path
    rows: int


def round_label(start: date) -> str:
    """The calendar quarter of a round's first day, e.g. `2025-Q1`."""
    return f"{start.year:04d}-Q{(start.month - 1) // 3 + 1}"


def _round_window(first: date, months: int) -> tuple[date, date]:
    """[start, end) of a round `months` after `first`; the end is cut at the quarter's end so the label holds."""
    total = first.year * 12 + first.month - 1 + months
    year, month = divmod(total, 12)
    start = date(year, month + 1, min(first.day, calendar.monthrange(year, month + 1)[1]))
    q_end = (start.month - 1) // 3 * 3 + 4  # first month of the next quarter, 13 = January next year
    quarter_end = date(start.year + q_end // 13, (q_end - 1) % 12 + 1, 1)
    return start, min(start + timedelta(days=ROUND_WINDOW_DAYS), quarter_end)


def _status_index(target: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """0 Severely Struggling .. 3 On Track from the per-day target, with the contract's >= cut-offs."""
    return np.searchsorted(_CUTS, target, side="right").astype(np.int64)


def _pick(rng: np.random.Generator, eligible: npt.NDArray[np.bool_], k: int) -> npt.NDArray[np.bool_]:
    """A mask of `k` rows drawn at random among the eligible ones (all of them when there are fewer)."""
    idx = np.flatnonzero(eligible)
    mask = np.zeros(len(eligible), dtype=bool)
    mask[rng.choice(idx, min(max(k, 0), len(idx)), replace=False)] = True
    return mask


def _new_targets(
    old: npt.NDArray[np.float64], step: npt.NDArray[np.int64], rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """A per-day target in band `status + step` (step -1, 0, +1), at least `_MARGIN` inside its edges."""
    n, band = len(old), _status_index(old) + step
    lo, hi = _BAND_LO[band] + _MARGIN, _BAND_HI[band] - _MARGIN
    # Stayers drift by about ±12% a year; a drift that would leave the band is redrawn inside it.
    spread = 0.12
    drift = old * np.exp(rng.normal(0, spread, n))
    near_lo, near_hi = np.maximum(lo, old * np.exp(-spread)), np.minimum(hi, old * np.exp(spread))
    redraw = np.exp(rng.uniform(np.log(near_lo), np.log(np.maximum(near_hi, near_lo))))
    stay = np.where((drift >= lo) & (drift <= hi), drift, redraw)
    # Movers land anywhere in a middle band, just above 2.15 when they reach On Track (graduating
    # households are seldom far above the line) and just below 1.25 when they fall to Severely Struggling.
    middle = np.exp(rng.uniform(np.log(lo), np.log(hi)))
    top = np.minimum(lo * np.exp(rng.exponential(0.15, n)), hi)
    bottom = np.maximum(hi * np.exp(-rng.exponential(0.2, n)), lo)
    moved = np.select([band == 3, band == 0], [top, bottom], middle)
    return np.asarray(np.clip(np.where(step == 0, stay, moved), lo, hi), dtype=np.float64)


def _rescale(x: npt.NDArray[np.float64], factor: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """UGX amounts times a factor, in whole 500 UGX; an answered amount stays at least 500, a zero stays 0."""
    return np.where(x > 0, np.maximum(_floor(x * factor), 500.0), 0.0)


def _money_for(
    roster: pl.DataFrame, target: npt.NDArray[np.float64], rng: np.random.Generator
) -> dict[str, npt.NDArray[np.float64]]:
    """Collected money columns (USD) rescaled so the household lands on `target`, plus every derived one."""
    n = roster.height
    ugx = {k: np.round(roster[k].to_numpy() * RATE) for k in (*_CASH, *_FARM, _EATEN)}
    # Lines change unevenly (a salary rises, remittances stop growing), then one factor lands the total.
    # The target per year is cash lines + farm output + livestock eaten: sales cancel between income and
    # own consumption.
    noise = {k: np.exp(rng.normal(0, 0.15, n)) for k in _CASH} | {_EATEN: np.exp(rng.normal(0, 0.15, n))}
    farm = np.exp(rng.normal(0, 0.1, n))
    noise |= {k: farm for k in _FARM}
    parts = [*_CASH, *_FARM_OUTPUT, _EATEN]
    noisy = np.sum([ugx[k] * noise[k] for k in parts], axis=0)
    scale = target * c.DAYS_PER_YEAR * RATE / noisy
    new = {k: _rescale(x, scale * noise[k]) for k, x in ugx.items()}
    # Rounding each line down can leave own consumption below 500 UGX; the difference is livestock eaten.
    own = sum(new[k] for k in _FARM_OUTPUT) - sum(new[k] for k in _SALES) + new[_EATEN]
    new[_EATEN] = new[_EATEN] + np.where(own < 500, np.ceil((500 - own) / 500) * 500, 0.0)
    usd = {k: x / RATE for k, x in new.items()}
    vsla = roster["vsla_profits_ugx"].to_numpy()  # profits and herds vary; who has them does not
    vsla = np.where(
        vsla > 0, np.clip(np.round(vsla * np.exp(rng.normal(0, 0.3, n)), -3), 5000, 1_500_000), 0.0
    )
    herd = np.round(roster["livestock_asset_value"].to_numpy() * RATE)
    herd = np.where(herd > 0, np.clip(np.round(herd * np.exp(rng.normal(0, 0.15, n)), -4), 10_000, 12e6), 0.0)
    usd |= {"vsla_profits_ugx": vsla, "vsla_profits_usd": vsla / RATE, "livestock_asset_value": herd / RATE}
    _derive(usd)
    return usd


def _relocate(
    roster: pl.DataFrame, movers: npt.NDArray[np.bool_], rng: np.random.Generator
) -> tuple[pl.Series, pl.Series]:
    """Cluster and village after moving the `movers` to a village of another cluster in the same district."""
    geo = _geography()[0]
    gd, gc, gv = (geo[x].to_numpy() for x in ("district", "cluster", "village"))
    idx = np.flatnonzero(movers)
    dist, clus = (roster[x].gather(idx).to_numpy() for x in ("district", "cluster"))
    to_cluster, to_village = clus.copy(), roster["village"].gather(idx).to_numpy()
    for d, clusters in c.DISTRICT_CLUSTERS.items():
        for cl in clusters:
            rows = np.flatnonzero((dist == d) & (clus == cl))
            options = np.flatnonzero((gd == d) & (gc != cl))
            picked = options[rng.integers(0, len(options), len(rows))]
            to_cluster[rows], to_village[rows] = gc[picked], gv[picked]
    return (
        roster["cluster"].scatter(idx, pl.Series(to_cluster, dtype=pl.String)),
        roster["village"].scatter(idx, pl.Series(to_village, dtype=pl.String)),
    )


def _evolve(roster: pl.DataFrame, rng: np.random.Generator) -> tuple[pl.DataFrame, npt.NDArray[np.bool_]]:
    """Every roster household one round later, and who is not found; `moved` is a column of the result."""
    n = roster.height
    status = _status_index(roster[c.TARGET].to_numpy())
    absent = _pick(rng, np.ones(n, dtype=bool), round(_NOT_FOUND * n))
    up = _pick(rng, status < 3, round(_IMPROVE * n))
    down = _pick(rng, (status > 0) & ~up, round(_FALL_BACK * n))
    money = _money_for(
        roster, _new_targets(roster[c.TARGET].to_numpy(), up.astype(np.int64) - down, rng), rng
    )
    movers = _pick(rng, ~absent, round(_MOVE * (n - absent.sum())))
    cluster, village = _relocate(roster, movers, rng)
    # Stable attributes stay; a birth, death or marriage changes the size by one, and the programme's
    # practices are slowly adopted (and sometimes dropped).
    size = roster["household_size"].to_numpy()
    size = np.clip(size + (rng.random(n) < 0.08) * rng.choice([-1, 1], n), 1, 20)
    practices: dict[str, npt.NDArray[np.int64]] = {}
    for name, _ in _PRACTICES:
        x, u = roster[name].to_numpy(), rng.random(n)
        practices[name] = np.where(x == 0, u < 0.06, u >= 0.02).astype(np.int64)
    evolved = roster.with_columns(
        *(pl.Series(k, v, dtype=pl.Float64) for k, v in money.items()),
        *(pl.Series(k, v, dtype=pl.Int64) for k, v in practices.items()),
        pl.Series("household_size", size, dtype=pl.Int64),
        cluster.alias("cluster"),
        village.alias("village"),
    )
    return evolved.with_columns(moved=pl.Series(movers)), absent


def _joiners(
    count: int, rng: np.random.Generator, roster: pl.DataFrame, tag: str, width: int, first: int
) -> pl.DataFrame:
    """`count` new households in villages the panel already has, numbered `first`.. after the seed's tag.

    Their digits are one longer than round 1's, so a new id can never equal a baseline id.
    """
    fresh, _ = _clean_households(count, int(rng.integers(2**31)), False, QUARTER_START, 92)
    dist, vill = fresh["district"].to_numpy(), fresh["village"].to_numpy()
    to_cluster, to_village = fresh["cluster"].to_numpy().copy(), vill.copy()
    known = roster.select("district", "cluster", "village").unique().sort("village")
    for d in NAMES:
        here = known.filter(pl.col("district") == d)
        rows = np.flatnonzero((dist == d) & ~np.isin(vill, here["village"].to_numpy()))
        if here.is_empty() or not len(rows):
            continue
        picked = rng.integers(0, here.height, len(rows))
        to_cluster[rows], to_village[rows] = (
            here["cluster"].to_numpy()[picked],
            here["village"].to_numpy()[picked],
        )
    hid = pl.col("household_id")
    number = pl.Series(np.arange(first, first + count)).cast(pl.String).str.zfill(width)
    return fresh.with_columns(
        cluster=pl.Series(to_cluster, dtype=pl.String), village=pl.Series(to_village, dtype=pl.String)
    ).with_columns(
        household_id=pl.concat_str(
            hid.str.slice(0, 4),
            pl.col("village").str.slice(0, 3).str.to_uppercase(),
            hid.str.slice(7).str.replace(r"\d+$", ""),
            pl.lit(tag),
            pl.lit(number),
        ),
        moved=pl.lit(False),
    )


def _truth(frame: pl.DataFrame, label: str) -> pl.DataFrame:
    """The truth rows of one round's clean frame."""
    return frame.select(
        "household_id",
        round=pl.lit(label),
        progress_status=c.progress_status_expr(pl.col(c.TARGET)),
        moved="moved",
    )


def generate_panel(
    households: int,
    rounds: int,
    *,
    seed: int = 0,
    bad_rate: float = 0.0,
    first_round: date = date(2025, 1, 1),
    months_between: int = 12,
) -> Panel:
    """`households` surveyed in `rounds` rounds `months_between` apart: round 1 is `generate_households`.

    Each later round brings most households back with a realistic status change, misses a few, moves a
    few to another village and adds new ones; `bad_rate` faults are injected into every round's file.
    A household missed in one round keeps changing unseen and is usually found again in the next.
    """
    if households < 1 or rounds < 1:
        raise ValueError("a panel needs at least 1 household and 1 round")
    if months_between < 3:  # two rounds in one quarter would share a label
        raise ValueError("months_between must be at least 3, so every round has its own quarter")
    if not 0.0 <= bad_rate <= 1.0:
        raise ValueError("bad_rate must be between 0 and 1")
    district_index = {x: i for i, x in enumerate(NAMES)}
    start, end = _round_window(first_round, 0)
    as_utc = datetime(start.year, start.month, start.day, tzinfo=UTC)
    clean, rng = _clean_households(households, seed, True, as_utc, (end - start).days)
    frame, faults = _inject(clean, rng, bad_rate)
    clean = clean.with_columns(moved=pl.lit(False))
    label = round_label(start)
    done, truth = [PanelRound(label, start, end, frame, faults)], [_truth(clean, label)]
    roster = clean.select(*c.CANONICAL_NAMES, "moved")
    tag = str(1000 + (seed * 2654435761) % 9000)  # the seed's id tag, as in generate_households
    width = max(4, len(str(households))) + 1
    width = max(width, len(str(round(_NEW * households) * rounds + 1)))
    joined = 0
    for r in range(1, rounds):
        rng = np.random.default_rng([seed, r])
        start, end = _round_window(first_round, r * months_between)
        roster, absent = _evolve(roster, rng)
        count = round(_NEW * households)
        new = _joiners(count, rng, roster, tag, width, joined).select(roster.columns)
        joined += count
        clean = pl.concat([roster.filter(pl.Series(~absent)), new])
        roster = pl.concat([roster, new])
        d = clean["district"].replace_strict(district_index, return_dtype=pl.Int64).to_numpy()
        as_utc = datetime(start.year, start.month, start.day, tzinfo=UTC)
        canonical = clean.select(c.CANONICAL_NAMES).hstack(_metadata(rng, d, as_utc, (end - start).days))
        frame, faults = _inject(canonical, rng, bad_rate)
        label = round_label(start)
        done.append(PanelRound(label, start, end, frame, faults))
        truth.append(_truth(clean, label))
    return Panel(tuple(done), pl.concat(truth))


_EXTENSIONS = {"csv-semicolon": "csv", "csv-utf16": "csv", "kobo": "csv"}


def panel_file_name(label: str, fmt: str) -> str:
    """`households-<label>.<ext>`; the semicolon, UTF-16 and Kobo exports are CSV files."""
    return f"households-{label}.{_EXTENSIONS.get(fmt, fmt)}"


def write_panel(panel: Panel, directory: Path, fmt: str = "csv") -> list[WrittenRound]:
    """Write one file per round into `directory` (created if missing); on any failure nothing new is left."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"{directory} exists and is not a directory")
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    # Each file is written under a hidden partial name and renamed only once every round is written, so a
    # failure halfway never leaves a half-written file or a half-written panel behind.
    partial = [directory / f".{panel_file_name(r.label, fmt)}.partial" for r in panel.rounds]
    try:
        for r, tmp in zip(panel.rounds, partial, strict=True):
            write_households(r.frame, tmp, fmt)
    except BaseException:
        for tmp in partial:
            tmp.unlink(missing_ok=True)
        if created:
            directory.rmdir()
        raise
    written = []
    for r, tmp in zip(panel.rounds, partial, strict=True):
        path = tmp.replace(directory / panel_file_name(r.label, fmt))
        written.append(WrittenRound(r.label, path, r.frame.height))
    return written
