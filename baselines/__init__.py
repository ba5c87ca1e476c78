"""Baseline models of nlb_suite, one module each, with default configs under configs/<name>/."""
