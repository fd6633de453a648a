"""Hyperparameter sweeps: declared in a config file's ``get_sweep(arg)``, each point run as its
own training job in its own workdir, resumable, collected into a table and a figure.

Config files import this package for the declarations (``spec``); the runner
(``cnnlab.sweep.runner.run_sweep``, which loads matplotlib and submitit) is imported where a
sweep is run, so a training run of a config that declares a sweep does not load it."""

from cnnlab.sweep.spec import args, chain, grid, log_uniform, product, uniform, zip_
