"""Hyperparameter sweeps: declared in a config file's ``get_sweep(arg)``, each point run as its
own training job in its own workdir, resumable, collected into a table and a figure."""

from cnnlab.sweep.spec import args, chain, grid, log_uniform, product, uniform, zip_
from cnnlab.sweep.runner import run_sweep
