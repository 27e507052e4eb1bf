"""The Streamlit ops dashboard (`rtv dashboard`): `app.py`, its pages in `pages/`, cached loaders beside them."""

from tasks.platform.settings import UPLOAD_CAP_MB, upload_limit_mb  # one rule for the CLI and the uploader

__all__ = ["UPLOAD_CAP_MB", "upload_limit_mb"]
