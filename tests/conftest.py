"""Shared fixtures: synthetic NLB folders and the nlb_tools oracle."""

from __future__ import annotations

import logging

logging.getLogger("nlb_tools").setLevel(logging.ERROR)
