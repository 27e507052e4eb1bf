"""The Streamlit dashboard (AppTest and Chromium)."""
