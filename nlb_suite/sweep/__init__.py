"""Hyperparameter search and whole-benchmark batches on Ray Tune (the optional extra `sweep`).

`search_space` reads a baseline's search space, `ray_session` starts or joins Ray (local by default, a
cluster by address, failing fast when nothing answers), `trial` is what one Ray Tune trial runs (a
baseline's fit with per-epoch reports and checkpoints through the shared Trainer's hooks), `lineage` which
values trained which epochs of a PBT model, `search` runs a random search or population-based training and
records its results, `run_all` runs every dataset x bin width as Ray tasks and packages one submission.
Importing this package imports neither Ray nor torch.
"""
