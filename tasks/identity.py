"""Row identity, duplicates and protection of identifiers, before any row is validated or stored.

A row's identity is its instance id where the source has one, else a keyed digest of its conformed content.
Exact repeats within the batch and rows an earlier ingestion already stored are duplicates (stored once).
After this step no plaintext identifier remains in the frame: only Fernet tokens and keyed pseudonyms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from tasks import contract
from tasks.protect import Keyring, encrypt_column, id_shape, keyed_digest, pseudonymize
from tasks.rules import CONFLICT, ID_DISTRICT, ID_SHAPE, PSEUDONYM

IDENTITY = "_identity"
CONTENT = "_content_hash"
ENCRYPTED = {name: f"{name}_enc" for name in contract.PII_COLUMNS}
PSEUDONYMS = {"officer_id": "officer_pseudonym", "device_id": "device_pseudonym", "household_id": PSEUDONYM}
_CONTENT_COLUMNS = contract.CANONICAL_NAMES


@dataclass
class Deduplicated:
    """Rows to validate, and how many were duplicates of this batch or of earlier ingestions."""

    frame: pl.DataFrame
    within_batch: int
    earlier: int

    @property
    def duplicates(self) -> int:
        return self.within_batch + self.earlier


def add_identity(frame: pl.DataFrame, keyring: Keyring) -> pl.DataFrame:
    """Add keyed content digest, row identity, household pseudonym and the non-personal shape of the id."""
    content = frame.select(
        pl.concat_str([pl.col(c).cast(pl.String).fill_null("\x00") for c in _CONTENT_COLUMNS], separator="\x1f")
    ).to_series()
    digest = keyed_digest(keyring, content)
    instance = frame["instance_id"]
    identity = keyed_digest(keyring, ("iid:" + instance).alias("i"))
    ids = frame["household_id"]
    return frame.with_columns(
        pl.Series(CONTENT, digest),
        pl.Series(IDENTITY, identity).fill_null(pl.Series(digest)),
        pseudonymize(keyring, ids).alias(PSEUDONYM),
        pl.Series(ID_SHAPE, [id_shape(v) for v in ids.to_list()], dtype=pl.String),
        ids.str.slice(0, 3).alias(ID_DISTRICT),
    )


def drop_duplicates(frame: pl.DataFrame, claim: Callable[[list[tuple[str, str]]], dict[str, str]]) -> Deduplicated:
    """Keep the first copy of each identity; drop rows already stored; flag instance ids reused with new content.

    `claim` records this batch's identities in the catalog and returns those earlier ingestions hold.
    """
    first = frame.unique(subset=[IDENTITY], keep="first", maintain_order=True)
    within = frame.height - first.height
    earlier = claim(list(zip(first[IDENTITY].to_list(), first[CONTENT].to_list(), strict=True)))
    if earlier:
        held = pl.DataFrame({IDENTITY: list(earlier), "_earlier_content": list(earlier.values())},
                            schema={IDENTITY: pl.String, "_earlier_content": pl.String})
        first = first.join(held, on=IDENTITY, how="left", maintain_order="left")
        repeat = pl.col("_earlier_content").is_not_null() & (pl.col("_earlier_content") == pl.col(CONTENT))
        conflict = pl.col("_earlier_content").is_not_null() & (pl.col("_earlier_content") != pl.col(CONTENT))
        kept = first.filter(~repeat).with_columns(conflict.alias(CONFLICT)).drop("_earlier_content")
    else:
        kept = first.with_columns(pl.lit(False).alias(CONFLICT))
    return Deduplicated(kept, within, first.height - kept.height)


def protect_identifiers(frame: pl.DataFrame, keyring: Keyring) -> pl.DataFrame:
    """Replace plaintext identifiers with Fernet tokens (`<name>_enc`) and keyed pseudonyms."""
    added = [encrypt_column(keyring, frame[name], encrypted) for name, encrypted in ENCRYPTED.items()]
    added += [pseudonymize(keyring, frame[name]).alias(alias)
              for name, alias in PSEUDONYMS.items() if alias not in frame.columns]
    return frame.with_columns(added).drop(list(ENCRYPTED))
