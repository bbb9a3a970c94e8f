"""mvae-jax: MusicVAE in JAX/Flax (Roberts et al., ICML 2018), built to train on TPU/GPU pods."""

__version__ = "0.1.0"
