"""Engines decide where the statistics are computed, never what is computed."""
