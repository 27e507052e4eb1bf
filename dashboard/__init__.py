"""The Streamlit ops dashboard (`rtv dashboard`): `app.py`, its pages in `pages/`, cached loaders beside them."""

UPLOAD_CAP_MB = 200  # Streamlit holds an upload in memory, and uploads past ~100-200 MB fail behind proxies


def upload_limit_mb(max_upload_bytes: int) -> int:
    """Largest browser upload in MB: RTV_MAX_UPLOAD_BYTES, capped at UPLOAD_CAP_MB."""
    return max(1, min(max_upload_bytes // (1024 * 1024), UPLOAD_CAP_MB))
