"""`rtv keys init | status | rotate`: the encryption keys."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cli.common import current_user, fail, open_runtime

keys_app = typer.Typer(no_args_is_help=True, help="Encryption keys: status, first key, rotation.")


@keys_app.command("init")
def keys_init(
    print_env: Annotated[
        bool, typer.Option("--print-env", help="print new keys as environment lines instead")
    ] = False,
) -> None:
    """Create the first keys: a 0600 key file (refuses to replace one), or lines for a secret manager."""
    from tasks.platform.settings import Settings
    from tasks.protection.keystore import DEFAULT_KEY_FILE
    from tasks.protection.protect import Keyring, write_key_file

    keyring = Keyring.generate()
    if print_env:
        typer.echo(f"RTV_FERNET_KEYS={keyring.fernet_keys[0]}\nRTV_PSEUDONYM_KEY={keyring.pseudonym_key}")
        return
    path = (Settings().key_file or DEFAULT_KEY_FILE).expanduser()
    if path.exists():
        fail(f"{path} exists already; `rtv keys rotate` replaces keys without losing data")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_key_file(path, keyring)
    typer.echo(
        f"keys written to {path} (mode 0600); back it up: data sealed under it is unreadable without it"
    )


@keys_app.command("status")
def keys_status() -> None:
    """Where the keys live and which key encrypts new data (fingerprints only, never keys)."""
    from tasks.workflows.rotation import fingerprint

    rt = open_runtime()
    keyring = rt.keyring
    typer.echo(f"keys in: {rt.keys.store.where}")
    typer.echo(f"encrypting with: {fingerprint(keyring.fernet_keys[0])}")
    if len(keyring.fernet_keys) > 1:
        typer.echo(
            f"also reading with: {', '.join(fingerprint(k) for k in keyring.fernet_keys[1:])} "
            "(a rotation is unfinished: run `rtv keys rotate`)"
        )


@keys_app.command("rotate")
def keys_rotate(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Add a key, re-encrypt every stored file and sealed column under it, retire the old key (resumable)."""
    from tasks.protection import audit
    from tasks.protection.protect import ProtectionError
    from tasks.workflows.rotation import rotate_keys

    rt = open_runtime()
    try:
        result = rotate_keys(rt.store, rt.keys.store, say=lambda line: typer.echo(line, err=True))
    except (ProtectionError, RuntimeError) as stopped:
        fail(str(stopped))
    summary = {
        "new_key": result.new_key,
        "retired": result.retired,
        "objects": result.counts,
        "resumed": result.resumed,
    }
    audit.record(
        rt.catalog,
        current_user() or "cli",
        "rotated",
        result.new_key,
        {"retired": result.retired, "counts": result.counts, "resumed": result.resumed},
    )
    typer.echo(
        json.dumps(summary, indent=2)
        if as_json
        else f"now encrypting with {result.new_key}; retired "
        f"{', '.join(result.retired) or 'nothing'}; {result.counts}"
    )
