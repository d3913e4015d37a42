"""Data: image sources, the on-disk INR store and importers of published INR data sets."""

from .store import INRStore, check_store, load_store, make_splits, write_store

__all__ = ["INRStore", "check_store", "load_store", "make_splits", "write_store"]
