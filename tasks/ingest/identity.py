"""Row identity, duplicates and protection of identifiers, before any row is validated or stored.

A row's identity is its instance id where the source has one, else a keyed digest of its conformed content.
Exact repeats within the batch and rows an earlier ingestion already stored are duplicates (stored once).
After this step no plaintext identifier remains in the frame: only sealed tokens and keyed pseudonyms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from tasks.ingest import contract
from tasks.ingest.rules import CONFLICT, ID_DISTRICT, ID_SHAPE, PSEUDONYM
from tasks.protection.protect import Keyring, hmac_expr, pseudonym_expr, pseudonymize, seal_columns

IDENTITY = "_identity"
CONTENT = "_content_hash"
PII_KEY = "pii_key"
ENCRYPTED = {name: f"{name}_enc" for name in contract.PII_COLUMNS}
PSEUDONYMS = {"household_id": PSEUDONYM, "officer_id": "officer_pseudonym", "device_id": "device_pseudonym"}
_NUMERIC = tuple(c.name for c in contract.COLUMNS if c.dtype in ("int", "float"))
_TEXT = tuple(c.name for c in contract.COLUMNS if c.dtype not in ("int", "float"))
# A household's reference: not PII, stable, short enough to read out over a phone (`hh-` + 10 hex digits of
# its keyed pseudonym). Shown on every page and export beside (or instead of) the masked id.
REFERENCE_DIGITS = 10
REFERENCE_PATTERN = re.compile(rf"hh-([0-9a-f]{{{REFERENCE_DIGITS}}})")


def household_reference(pseudonym: str) -> str:
    """The reference of a household, from its pseudonym."""
    return f"hh-{pseudonym[:REFERENCE_DIGITS]}"


def household_reference_expr(pseudonyms: pl.Expr) -> pl.Expr:
    """`household_reference` as a polars expression over a pseudonym column."""
    return pl.lit("hh-") + pseudonyms.str.slice(0, REFERENCE_DIGITS)


@dataclass
class Deduplicated:
    """Rows to validate, and how many were duplicates of this batch or of earlier ingestions."""

    frame: pl.DataFrame
    within_batch: int
    earlier: int

    @property
    def duplicates(self) -> int:
        return self.within_batch + self.earlier


def _numeric_bytes(frame: pl.DataFrame) -> pl.Series:
    """Each row's numbers as their little-endian IEEE-754 bytes (nulls as NaN), one Binary value per row."""
    numbers = np.ascontiguousarray(frame.select(pl.col(_NUMERIC).cast(pl.Float64)).to_numpy(), dtype="<f8")
    width = 8 * len(_NUMERIC)
    packed = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), frame.height, [None, pa.py_buffer(numbers)]
    )
    return pl.Series("_numbers", packed).cast(pl.Binary)


def add_identity(frame: pl.DataFrame, keyring: Keyring) -> pl.DataFrame:
    """Add keyed content digest, row identity, household pseudonym and the non-personal shape of the id.

    The digest covers numbers as their IEEE-754 bytes and text as UTF-8, so it does not depend on how a
    library formats floats: a file re-sent after an upgrade is still recognised.
    """
    text = pl.concat_str([pl.col(c).fill_null("\x00") for c in _TEXT], separator="\x1f")
    content = hmac_expr(
        keyring, pl.concat_str([hmac_expr(keyring, pl.col("_numbers")), text], separator="\x1f")
    )
    household = pl.col("household_id")
    return (
        frame.with_columns(_numeric_bytes(frame))
        .with_columns(
            content.alias(CONTENT),
            pl.coalesce(hmac_expr(keyring, "iid:" + pl.col("instance_id")), content).alias(IDENTITY),
            pseudonym_expr(keyring, household).alias(PSEUDONYM),
            (
                household.str.slice(0, 3)
                + household.str.slice(3).str.replace_all("[A-Z]", "X").str.replace_all("[0-9]", "9")
            ).alias(ID_SHAPE),
            household.str.slice(0, 3).alias(ID_DISTRICT),
        )
        .drop("_numbers")
    )


def identity_keys(frame: pl.DataFrame) -> list[tuple[str, str]]:
    """(identity, content digest) of each distinct row, in key order (the catalog inserts them fastest so)."""
    keys = frame.select(IDENTITY, CONTENT).unique(IDENTITY, keep="first").sort(IDENTITY)
    return list(zip(keys[IDENTITY].to_list(), keys[CONTENT].to_list(), strict=True))


def drop_duplicates(frame: pl.DataFrame, earlier: dict[str, str]) -> Deduplicated:
    """Keep the first copy of each identity; drop rows already stored; flag instance ids reused with new content.

    `earlier` maps identities other ingestions already hold to the content digest they stored.
    """
    repeated = frame[IDENTITY].is_duplicated()
    first = frame.filter(frame[IDENTITY].is_first_distinct()) if repeated.any() else frame
    within = frame.height - first.height
    if earlier:
        held = pl.DataFrame(
            {IDENTITY: list(earlier), "_earlier_content": list(earlier.values())},
            schema={IDENTITY: pl.String, "_earlier_content": pl.String},
        )
        first = first.join(held, on=IDENTITY, how="left", maintain_order="left")
        known = pl.col("_earlier_content").is_not_null()
        repeat = known & (pl.col("_earlier_content") == pl.col(CONTENT))
        kept = first.filter(~repeat).with_columns((known & ~repeat).alias(CONFLICT)).drop("_earlier_content")
    else:
        kept = first.with_columns(pl.lit(False).alias(CONFLICT))
    return Deduplicated(kept, within, first.height - kept.height)


def protect_identifiers(frame: pl.DataFrame, keyring: Keyring) -> pl.DataFrame:
    """Replace plaintext identifiers with sealed tokens (`<name>_enc`, data key in `pii_key`) and pseudonyms."""
    wrapped, sealed = seal_columns(keyring, {name: frame[name] for name in ENCRYPTED})
    added = [sealed[name].alias(encrypted) for name, encrypted in ENCRYPTED.items()]
    added += [
        pseudonymize(keyring, frame[name]).alias(alias)
        for name, alias in PSEUDONYMS.items()
        if alias not in frame.columns
    ]
    return frame.with_columns(*added, pl.lit(wrapped).alias(PII_KEY)).drop(list(ENCRYPTED))
