"""Open a store from a URL; kept for existing imports. The registry lives in :mod:`atlas_tasks.store.urls`."""

from __future__ import annotations

from atlas_tasks.errors import MissingExtraError
from atlas_tasks.store.urls import STORE_URL_ENV, file_url_path, open_store, redact

_redact = redact

__all__ = ["STORE_URL_ENV", "MissingExtraError", "file_url_path", "open_store"]
