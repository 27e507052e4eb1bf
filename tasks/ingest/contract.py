"""The 75-column RTV household-survey data contract: the single source of truth for names, types and rules.

Facts come from `shared/domain.md` (measured on the real file). Validation rules, polars dtypes, model
features, the PII list, drift monitoring and dashboard labels are all generated from the tables below.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from polars.expr.whenthen import ChainedThen, Then

UGX_PER_USD = 4463.179
DAYS_PER_YEAR = 365.0
TARGET = "income_consumption_residues_per_day"

# ProgressStatus thresholds (USD per household per day), applied with >= as in every source.
STATUS_THRESHOLDS: tuple[tuple[str, float], ...] = (
    ("On Track", 2.15),
    ("At Risk", 1.77),
    ("Struggling", 1.25),
    ("Severely Struggling", float("-inf")),
)
PROGRESS_STATUSES = tuple(name for name, _ in STATUS_THRESHOLDS)
VULNERABLE_STATUSES = frozenset({"Struggling", "Severely Struggling"})


class Role(StrEnum):
    """What a column is for; a column may have several roles."""

    ID = "id"
    GEO = "geography"
    PII = "pii"
    QUASI = "quasi_identifier"
    FINANCIAL = "financial"
    DERIVED = "derived"
    TARGET = "target"
    MODEL = "model_input"
    META = "metadata"
    MONITORED = "monitored"


@dataclass(frozen=True)
class Column:
    """One contract column: source header, canonical name, type, allowed values and roles."""

    source: str
    name: str
    dtype: str  # "str" | "int" | "float" | "datetime"
    label: str
    roles: frozenset[Role] = frozenset()
    min: float | None = None
    max: float | None = None
    codes: tuple[str | int | float, ...] = ()
    pattern: str | None = None
    nullable: bool = False
    unit: str | None = None
    aliases: tuple[str, ...] = ()

    @property
    def polars_dtype(self) -> pl.DataType:
        """Polars dtype used in every zone after conform."""
        return {"str": pl.String, "int": pl.Int64, "float": pl.Float64, "datetime": pl.String}[self.dtype]()

    def has(self, role: Role) -> bool:
        """Whether the column carries the role."""
        return role in self.roles


@dataclass(frozen=True)
class Derivation:
    """`target = sum(coefficient * term)`, exact in the real data up to float or UGX rounding."""

    target: str
    terms: tuple[tuple[str, float], ...]
    abs_tolerance: float = 0.01
    rel_tolerance: float = 1e-6
    computable: bool = True  # a missing target may be filled from its terms

    @property
    def term_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.terms)


@dataclass(frozen=True)
class CrossFieldRule:
    """A row-level rule between columns: `when` holds ⇒ `column` must satisfy `expect`."""

    name: str
    description: str
    when: tuple[str, str, float]  # (column, operator, value)
    column: str
    expect: tuple[str, float]  # (operator, value)


G, ID, PII, QI, FIN, DER, TGT, MOD, MET, MON = (
    Role.GEO,
    Role.ID,
    Role.PII,
    Role.QUASI,
    Role.FINANCIAL,
    Role.DERIVED,
    Role.TARGET,
    Role.MODEL,
    Role.META,
    Role.MONITORED,
)


def _r(*roles: Role) -> frozenset[Role]:
    return frozenset(roles)


BINARY = (0, 1)
USD_MAX = 20_000.0  # a plausible annual ceiling per income line; UGX typed into a USD field lands far above
HOUSEHOLD_ID_PATTERN = r"^(?:KAN|MIT|RUK)-XXX-XXX-X9+$|^RUB-XXX-X-9+$"  # applied to the masked id shape

DISTRICT_CLUSTERS: dict[str, tuple[str, ...]] = {
    "Rukungiri": ("Kacence", "Kahoko", "Kitugunda", "Murama", "Ngoma"),
    "Mitooma": ("Kagati", "Kiyanga", "Rwanja East", "Rwoburunga"),
    "Kanungu": ("Bujengwe", "Ibarya", "Kihanda", "Rutendere"),
    "Rubanda": ("Kitahurira", "Mugyera", "Nyamweru"),
}
DISTRICT_CODES = {"Kanungu": "KAN", "Mitooma": "MIT", "Rubanda": "RUB", "Rukungiri": "RUK"}
LOAN_SOURCE_CODES = ("1", "2", "3", "4", "5", "6", "7", "8", "97", "99")
BANANA_WILT_CODES = ("1", "2", "3")


def _money(source: str, name: str, label: str, *extra: Role, aliases: tuple[str, ...] = ()) -> Column:
    return Column(
        source, name, "float", label, _r(FIN, *extra), min=0, max=USD_MAX, unit="USD/year", aliases=aliases
    )


def _flag(source: str, name: str, label: str, *extra: Role) -> Column:
    return Column(source, name, "int", label, _r(MOD, *extra), codes=BINARY)


# The 75 columns in CSV order. `source` is the exact header; the second copy of a repeated header is
# addressed as pandas names it (`VSLA_Profits.1`, `Assets.1`).
COLUMNS: tuple[Column, ...] = (
    Column("District", "district", "str", "District", _r(G, MOD, MON), codes=tuple(DISTRICT_CLUSTERS)),
    Column("Cluster", "cluster", "str", "Cluster", _r(G, MOD)),
    Column("Village", "village", "str", "Village", _r(G, QI), pattern=r"^[A-Za-z][A-Za-z0-9' ._-]{0,60}$"),
    Column("HouseHoldID", "household_id", "str", "Household ID", _r(ID, PII)),
    Column(
        "HouseholdSize",
        "household_size",
        "int",
        "Household size",
        _r(QI, MOD, MON),
        min=1,
        max=20,
        unit="people",
    ),
    Column(
        "TimeToOPD",
        "time_to_opd",
        "float",
        "Minutes to outpatient clinic",
        _r(MOD, MON),
        min=1,
        max=300,
        unit="minutes",
    ),
    Column(
        "TimeToWater",
        "time_to_water",
        "float",
        "Minutes to water",
        _r(MOD, MON),
        min=1,
        max=600,
        unit="minutes",
    ),
    Column(
        "AgricultureLand",
        "agriculture_land",
        "float",
        "Farm land (acres)",
        _r(MOD, MON),
        min=0,
        max=50,
        nullable=True,
        unit="acres",
    ),
    Column(
        "Season1CropsPlanted", "season1_crops_planted", "int", "Crop types, season 1", _r(MOD), min=0, max=15
    ),
    Column(
        "Season2CropsPlanted", "season2_crops_planted", "int", "Crop types, season 2", _r(MOD), min=0, max=15
    ),
    Column(
        "PerennialCropsGrown", "perennial_crops_grown", "int", "Perennial crop types", _r(MOD), min=0, max=20
    ),
    Column(
        "VSLA_Profits",
        "vsla_profits_ugx",
        "float",
        "Savings-group profit (UGX)",
        _r(FIN, MOD, MON),
        min=0,
        max=50_000_000,
        unit="UGX",
    ),
    Column(
        "VSLA_Profits.1",
        "vsla_profits_usd",
        "float",
        "Savings-group profit (USD)",
        _r(FIN, DER),
        min=0,
        max=USD_MAX,
        unit="USD/year",
    ),
    _money("Season1VegetableIncome", "season1_vegetable_income", "Vegetable sales, season 1"),
    _money(
        "Season2VegatableIncome",
        "season2_vegetable_income",
        "Vegetable sales, season 2",
        aliases=("Season2VegetableIncome",),
    ),
    _money("VegetableIncome", "vegetable_income", "Vegetable sales", DER),
    _money("Season1VegetableValue", "season1_vegetable_value", "Vegetables produced, season 1"),
    _money("Season2VegetableValue", "season2_vegetable_value", "Vegetables produced, season 2"),
    _money("SeasonalVegetableValue", "seasonal_vegetable_value", "Vegetables produced", DER),
    _money("FormalEmployment", "formal_employment_income", "Formal employment income"),
    _money("PersonalBusinessAndSelfEmployment", "business_income", "Business and self-employment income"),
    _money("CasualLabour", "casual_labour_income", "Casual labour income"),
    _money("RemittancesAndGifts", "remittances_income", "Remittances and gifts"),
    _money("RentIncome", "rent_income", "Rental income"),
    _money("Season1CropIncome", "season1_crop_income", "Crop sales, season 1"),
    _money("Season2CropIncome", "season2_crop_income", "Crop sales, season 2"),
    _money("SeasonalCropIncome", "seasonal_crop_income", "Crop sales", DER),
    _money("PerenialCropIncome", "perennial_crop_income", "Perennial crop sales"),
    _money("LivestockIncome", "livestock_income", "Livestock sales"),
    _money("Season1AgricValue", "season1_agric_value", "Farm production value, season 1"),
    _money("Season2AgricValue", "season2_agric_value", "Farm production value, season 2"),
    _money("SeasonalAgricValue", "seasonal_agric_value", "Seasonal farm production value", DER),
    _money("PerennialAgricValue", "perennial_agric_value", "Perennial production value"),
    _money("AgricValue", "agric_value", "Farm production value", DER),
    _money("LivestockIncomeConsumed", "livestock_consumed_value", "Livestock consumed at home"),
    Column(
        "LivestockAssetValue",
        "livestock_asset_value",
        "float",
        "Livestock held (USD)",
        _r(FIN, MOD, MON),
        min=0,
        max=USD_MAX,
        unit="USD",
    ),
    _money("HouseholdIcome", "household_income", "Household cash income", DER, MON),
    _money("Consumption+Residues", "consumption_residues", "Own production consumed", DER),
    _money("HHIncome+Consumption+Residues", "income_consumption_residues", "Income and own consumption", DER),
    _money(
        "HHIncome+Consumption+Assets+Residues",
        "income_consumption_assets_residues",
        "Income, consumption and livestock",
        DER,
    ),
    Column(
        "Assets", "assets_ugx", "float", "Livestock held (UGX)", _r(FIN), min=0, max=500_000_000, unit="UGX"
    ),
    Column(
        "Assets.1",
        "assets_usd",
        "float",
        "Livestock held (USD, copy)",
        _r(FIN, DER),
        min=0,
        max=USD_MAX,
        unit="USD",
    ),
    Column(
        "HHIncome/Day",
        "household_income_per_day",
        "float",
        "Cash income per day",
        _r(FIN, DER),
        min=0,
        max=USD_MAX / DAYS_PER_YEAR,
        unit="USD/day",
    ),
    Column(
        "Consumption/Day",
        "consumption_per_day",
        "float",
        "Own consumption per day",
        _r(FIN, DER),
        min=0,
        max=USD_MAX / DAYS_PER_YEAR,
        unit="USD/day",
    ),
    Column(
        "HHIncome+Consumption+Residues/Day",
        TARGET,
        "float",
        "Income and consumption per day",
        _r(FIN, DER, TGT, MON),
        min=0,
        max=50,
        unit="USD/day",
    ),
    Column(
        "HHIncome+Consumption+Assets+Residues/Day",
        "income_consumption_assets_residues_per_day",
        "float",
        "Income, consumption and livestock per day",
        _r(FIN, DER),
        min=0,
        max=USD_MAX / DAYS_PER_YEAR,
        unit="USD/day",
    ),
    Column(
        "hhh_sex", "head_sex", "int", "Sex of household head (1 male, 2 female)", _r(QI, MOD), codes=(1, 2)
    ),
    Column("hhh_read_write", "head_literate", "int", "Head can read and write", _r(QI, MOD), codes=BINARY),
    Column("Material_walls", "wall_material", "int", "Wall material code", _r(MOD), codes=(1, 2)),
    Column("radios_owned", "radios_owned", "int", "Radios owned", _r(MOD), min=0, max=10),
    Column("phones_owned", "phones_owned", "int", "Phones owned", _r(MOD), min=0, max=20),
    Column(
        "business_number", "business_count", "int", "Businesses run", _r(MOD), min=0, max=10, nullable=True
    ),
    _flag("work_casual", "work_casual", "Does casual work"),
    Column("work_salaried", "work_salaried", "int", "Members in salaried work", _r(MOD), min=0, max=10),
    _flag("save_mode_7", "saves_in_vsla", "Saves in a VSLA group"),
    Column(
        "Loan_from",
        "loan_sources",
        "str",
        "Loan sources (codes)",
        _r(FIN, MOD),
        nullable=True,
        pattern=r"^(?:" + "|".join(LOAN_SOURCE_CODES) + r")(?: (?:" + "|".join(LOAN_SOURCE_CODES) + r"))*$",
    ),
    _flag("perennial_cropping", "perennial_cropping", "Grows perennials"),
    Column(
        "household_fertilizer", "fertilizer_type", "int", "Fertilizer type code", _r(MOD), codes=(1, 2, 3, 99)
    ),
    Column("daily_meals", "daily_meals", "int", "Meals per day", _r(MOD), min=1, max=5),
    _flag("latrine_constructed", "latrine_constructed", "Has latrine"),
    _flag("tippy_tap_available", "tippy_tap_available", "Has tippy tap"),
    _flag("soap_ash_available", "soap_ash_available", "Soap or ash available"),
    _flag("standard_hangline", "standard_hangline", "Has drying hangline"),
    _flag("kitchen_house", "kitchen_house", "Separate kitchen"),
    _flag("bathroom_constructed", "bathroom_constructed", "Has bathroom"),
    _flag("swept_compound", "swept_compound", "Compound swept"),
    _flag("dish_rack_present", "dish_rack_present", "Has dish rack"),
    Column("composts", "composts", "float", "Composting (0, 0.5, 1)", _r(MOD), codes=(0.0, 0.5, 1.0)),
    _flag("non_bio_waste_mgt_present", "non_bio_waste_managed", "Manages non-biodegradable waste"),
    _flag("apply_liquid_manure", "applies_liquid_manure", "Applies liquid manure"),
    Column(
        "organic_pesticide_expenditure",
        "organic_pesticide_ugx",
        "float",
        "Organic pesticide spend (UGX)",
        _r(FIN, MOD),
        min=0,
        max=5_000_000,
        nullable=True,
        unit="UGX",
    ),
    _flag("water_control_practise", "water_control_practice", "Water-control practice"),
    _flag("soil_management", "soil_management", "Soil management"),
    Column(
        "food_banana_wilt_diseases",
        "banana_wilt_codes",
        "str",
        "Banana wilt diseases (codes)",
        _r(MOD),
        nullable=True,
        pattern=r"^[123](?: [123])*$",
    ),
    _flag("postharvest_food_storage", "postharvest_storage", "Post-harvest storage"),
)

# Collection metadata a device or an export adds. Officer and device ids are personal data.
METADATA: tuple[Column, ...] = (
    Column(
        "instance_id",
        "instance_id",
        "str",
        "Submission instance id",
        _r(MET),
        nullable=True,
        pattern=r"^[A-Za-z0-9:_.\-]{1,128}$",
    ),
    Column(
        "deprecated_id",
        "deprecated_id",
        "str",
        "Instance id this submission edits",
        _r(MET),
        nullable=True,
        pattern=r"^[A-Za-z0-9:_.\-]{1,128}$",
    ),
    Column(
        "submitted_at",
        "submitted_at",
        "datetime",
        "Submitted at",
        _r(MET),
        nullable=True,
        pattern=r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$",
    ),
    Column("officer_id", "officer_id", "str", "Field officer", _r(MET, PII), nullable=True),
    Column("device_id", "device_id", "str", "Device", _r(MET, PII), nullable=True),
    Column(
        "app_version",
        "app_version",
        "str",
        "App or form version",
        _r(MET),
        nullable=True,
        pattern=r"^[A-Za-z0-9 ._\-+()]{1,64}$",
    ),
)

# Kobo / ODK system columns and what they are in the contract.
SYSTEM_COLUMN_ALIASES: dict[str, str] = {
    "_uuid": "instance_id",
    "meta/instanceID": "instance_id",
    "instanceID": "instance_id",
    "KEY": "instance_id",
    "meta/deprecatedID": "deprecated_id",
    "deprecatedID": "deprecated_id",
    "_submission_time": "submitted_at",
    "SubmissionDate": "submitted_at",
    "_submitted_by": "officer_id",
    "SubmitterID": "officer_id",
    "field_officer_id": "officer_id",
    "deviceid": "device_id",
    "DeviceID": "device_id",
    "__version__": "app_version",
    "_version": "app_version",
}

_F = 1.0
DERIVATIONS: tuple[Derivation, ...] = (
    Derivation("vsla_profits_usd", (("vsla_profits_ugx", 1 / UGX_PER_USD),), abs_tolerance=1e-4),
    Derivation("vegetable_income", (("season1_vegetable_income", _F), ("season2_vegetable_income", _F))),
    Derivation(
        "seasonal_vegetable_value", (("season1_vegetable_value", _F), ("season2_vegetable_value", _F))
    ),
    Derivation("seasonal_crop_income", (("season1_crop_income", _F), ("season2_crop_income", _F))),
    Derivation("seasonal_agric_value", (("season1_agric_value", _F), ("season2_agric_value", _F))),
    Derivation("agric_value", (("seasonal_agric_value", _F), ("perennial_agric_value", _F))),
    Derivation(
        "household_income",
        (
            ("formal_employment_income", _F),
            ("business_income", _F),
            ("casual_labour_income", _F),
            ("remittances_income", _F),
            ("rent_income", _F),
            ("seasonal_crop_income", _F),
            ("perennial_crop_income", _F),
            ("livestock_income", _F),
        ),
    ),
    Derivation(
        "consumption_residues",
        (
            ("agric_value", _F),
            ("seasonal_crop_income", -_F),
            ("perennial_crop_income", -_F),
            ("livestock_income", -_F),
            ("livestock_consumed_value", _F),
        ),
    ),
    Derivation("income_consumption_residues", (("household_income", _F), ("consumption_residues", _F))),
    Derivation("assets_usd", (("livestock_asset_value", _F),)),
    # The UGX copy is collected, not derived; it must agree with the USD value at the fixed rate.
    Derivation("assets_ugx", (("livestock_asset_value", UGX_PER_USD),), abs_tolerance=1.0, computable=False),
    Derivation(
        "income_consumption_assets_residues",
        (("income_consumption_residues", _F), ("livestock_asset_value", _F)),
    ),
    Derivation("household_income_per_day", (("household_income", 1 / DAYS_PER_YEAR),), abs_tolerance=1e-4),
    Derivation("consumption_per_day", (("consumption_residues", 1 / DAYS_PER_YEAR),), abs_tolerance=1e-4),
    Derivation(TARGET, (("income_consumption_residues", 1 / DAYS_PER_YEAR),), abs_tolerance=1e-4),
    Derivation(
        "income_consumption_assets_residues_per_day",
        (("income_consumption_assets_residues", 1 / DAYS_PER_YEAR),),
        abs_tolerance=1e-4,
    ),
)

# Vegetable sales are part of crop sales and vegetable production part of farm production (holds in every
# real row), so vegetable columns carry the target although no formula names them.
PART_OF: tuple[tuple[str, str], ...] = (
    ("season1_vegetable_income", "season1_crop_income"),
    ("season2_vegetable_income", "season2_crop_income"),
    ("vegetable_income", "seasonal_crop_income"),
    ("season1_vegetable_value", "season1_agric_value"),
    ("season2_vegetable_value", "season2_agric_value"),
    ("seasonal_vegetable_value", "seasonal_agric_value"),
    ("season1_vegetable_income", "season1_vegetable_value"),
    ("season2_vegetable_income", "season2_vegetable_value"),
)

CROSS_FIELD_RULES: tuple[CrossFieldRule, ...] = (
    CrossFieldRule(
        "no_perennials_no_perennial_crops",
        "perennial_cropping = 0 ⇒ no perennial crop types",
        ("perennial_cropping", "==", 0),
        "perennial_crops_grown",
        ("==", 0),
    ),
    CrossFieldRule(
        "perennials_have_crop_types",
        "perennial_cropping = 1 ⇒ at least one perennial crop type",
        ("perennial_cropping", "==", 1),
        "perennial_crops_grown",
        (">=", 1),
    ),
    CrossFieldRule(
        "no_salaried_work_no_formal_income",
        "work_salaried = 0 ⇒ FormalEmployment = 0",
        ("work_salaried", "==", 0),
        "formal_employment_income",
        ("==", 0),
    ),
    CrossFieldRule(
        "salaried_work_has_formal_income",
        "work_salaried ≥ 1 ⇒ FormalEmployment > 0",
        ("work_salaried", ">=", 1),
        "formal_employment_income",
        (">", 0),
    ),
    CrossFieldRule(
        "no_vsla_no_vsla_profit",
        "save_mode_7 = 0 ⇒ VSLA_Profits = 0",
        ("saves_in_vsla", "==", 0),
        "vsla_profits_ugx",
        ("==", 0),
    ),
    CrossFieldRule(
        "no_casual_work_no_casual_income",
        "work_casual = 0 ⇒ CasualLabour = 0",
        ("work_casual", "==", 0),
        "casual_labour_income",
        ("==", 0),
    ),
    CrossFieldRule(
        "no_land_no_season1_crops",
        "AgricultureLand = 0 ⇒ no season-1 crops planted",
        ("agriculture_land", "==", 0),
        "season1_crops_planted",
        ("==", 0),
    ),
    CrossFieldRule(
        "no_land_no_season2_crops",
        "AgricultureLand = 0 ⇒ no season-2 crops planted",
        ("agriculture_land", "==", 0),
        "season2_crops_planted",
        ("==", 0),
    ),
    CrossFieldRule(
        "vsla_profit_not_token",
        "VSLA profit, when present, is at least 100 UGX (1 or 2 is a slip)",
        ("vsla_profits_ugx", ">", 0),
        "vsla_profits_ugx",
        (">=", 100),
    ),
)


# ---- lookups generated from the tables -------------------------------------------------------------

ALL_COLUMNS: tuple[Column, ...] = COLUMNS + METADATA
BY_NAME: dict[str, Column] = {c.name: c for c in ALL_COLUMNS}
CANONICAL_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
METADATA_NAMES: tuple[str, ...] = tuple(c.name for c in METADATA)
DERIVATION_BY_TARGET: dict[str, Derivation] = {d.target: d for d in DERIVATIONS}


def column(name: str) -> Column:
    """The contract column with this canonical name."""
    return BY_NAME[name]


def names_with(role: Role, columns: tuple[Column, ...] = ALL_COLUMNS) -> tuple[str, ...]:
    """Canonical names of the columns carrying a role, in contract order."""
    return tuple(c.name for c in columns if role in c.roles)


PII_COLUMNS: tuple[str, ...] = names_with(Role.PII)
GEO_COLUMNS: tuple[str, ...] = names_with(Role.GEO)
MONITORED_COLUMNS: tuple[str, ...] = names_with(Role.MONITORED)
LABELS: dict[str, str] = {c.name: c.label for c in ALL_COLUMNS}


@cache
def header_aliases() -> dict[str, str]:
    """Every accepted spelling of a header (exact source, dictionary spelling, canonical) → canonical name."""
    aliases: dict[str, str] = {}
    for col in ALL_COLUMNS:
        for spelling in (col.source, col.name, *col.aliases):
            aliases[spelling] = col.name
    aliases.update(SYSTEM_COLUMN_ALIASES)
    return aliases


@cache
def target_closure() -> frozenset[str]:
    """The target, every term it is summed from (recursively), and every column derived from any of them.

    A model that reads any of these reads its own answer.
    """
    leaky: set[str] = {TARGET}
    frontier = [TARGET]
    while frontier:
        derivation = DERIVATION_BY_TARGET.get(frontier.pop())
        for term in derivation.term_names if derivation else ():
            if term not in leaky:
                leaky.add(term)
                frontier.append(term)
    grew = True
    while grew:  # add totals computed from leaky columns, and parts of leaky wholes
        grew = False
        for d in DERIVATIONS:
            if d.target not in leaky and any(t in leaky for t in d.term_names):
                leaky.add(d.target)
                grew = True
        for part, whole in PART_OF:
            if part not in leaky and whole in leaky:
                leaky.add(part)
                grew = True
    return frozenset(leaky)


# The outcome and every money column it is summed from or totalled into: what the programme exists to move.
# A shift in these between rounds is programme change (the Progress page's subject), not input drift.
PROGRAMME_OUTCOME_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.name in target_closure())


def model_input_columns() -> tuple[str, ...]:
    """Columns the model may read: marked model inputs that are not in the target's closure."""
    leaky = target_closure()
    return tuple(c.name for c in COLUMNS if Role.MODEL in c.roles and c.name not in leaky)


def income_columns() -> tuple[str, ...]:
    """Base money columns of the income module (the target's terms that are collected, not derived)."""
    return tuple(n for n in target_closure() if Role.DERIVED not in BY_NAME[n].roles)


def source_name(canonical: str) -> str:
    """The exact source header (pandas spelling for repeated headers) of a canonical name."""
    return BY_NAME[canonical].source


def progress_status_labels(target: object) -> object:
    """ProgressStatus for a numpy array of per-day values (the same >= thresholds as the polars expression)."""
    import numpy as np

    values = np.asarray(target, dtype=float)
    cuts = [t for _, t in STATUS_THRESHOLDS[:-1]]
    return np.select([values >= c for c in cuts], list(PROGRESS_STATUSES[:-1]), PROGRESS_STATUSES[-1])


def progress_status_expr(target: pl.Expr) -> pl.Expr:
    """ProgressStatus from the per-day target, with the >= thresholds of both briefs; null stays null."""
    expr: Then | ChainedThen = pl.when(target.is_null()).then(pl.lit(None, dtype=pl.String))
    for status, threshold in STATUS_THRESHOLDS:
        expr = expr.when(target >= threshold).then(pl.lit(status))
    return expr.otherwise(pl.lit(None, dtype=pl.String))
