"""Experiment configurations: one ml_collections file per configuration (`get_config()`).

Installed as `mvae_jax.experiments`, so configs load by name on any install, and by path
(`--config experiments/<name>.py`) from a checkout.
"""
