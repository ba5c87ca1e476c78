"""Helpers shared by tests and benchmarks: the nlb_tools reference, input builders, recipes."""
