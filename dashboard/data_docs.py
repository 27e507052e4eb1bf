"""An ingestion's Great Expectations Data Docs, made viewable inside the page and downloadable as a zip."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import streamlit as st

from dashboard.data import TTL_ZONES, key, runtime
from tasks.runtime import Runtime

_STYLESHEET = re.compile(r'<link[^>]+href="(?P<href>[^"]*static/styles/[^"]+\.css)"[^>]*>')


def _inline_styles(html: str, page_key: str, files: dict[str, bytes], prefix: str) -> str:
    """Put the site's local stylesheets inside the page: an iframe of HTML text cannot follow relative links."""
    folder = page_key.rsplit("/", 1)[0] if "/" in page_key else ""

    def inline(match: re.Match[str]) -> str:
        target = (Path("/") / folder / match["href"]).resolve().as_posix().lstrip("/")
        css = files.get(prefix + target)
        return f"<style>{css.decode(errors='replace')}</style>" if css is not None else match[0]

    return _STYLESHEET.sub(inline, html)


@st.cache_data(ttl=TTL_ZONES, show_spinner="Opening the Data Docs …", max_entries=4)
def _data_docs(fp: str, ingestion_id: str, _rt: Runtime) -> dict[str, Any]:
    prefix = f"reports/{ingestion_id}/data_docs/"
    keys = _rt.store.list(prefix)
    if not keys:
        return {}
    files = {k: _rt.store.get(k) for k in keys}
    pages = {}
    for k, content in files.items():
        if k.endswith(".html"):
            name = k.removeprefix(prefix)
            pages[name] = _inline_styles(content.decode(errors="replace"), name, files, prefix)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for k, content in files.items():
            zipped.writestr(f"data_docs/{k.removeprefix(prefix)}", content)
    return {
        "pages": dict(sorted(pages.items(), key=lambda kv: (not kv[0].startswith("validations/"), kv[0]))),
        "zip": archive.getvalue(),
    }


def data_docs(ingestion_id: str) -> dict[str, Any]:
    """An ingestion's GX Data Docs: HTML pages with their styles inlined, and the whole site as a zip."""
    rt = runtime()
    return _data_docs(key(rt), ingestion_id, rt)
