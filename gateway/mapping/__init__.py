"""Mappings from parsed documents to the canonical order."""
