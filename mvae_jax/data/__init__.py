"""The TFDS + grain input pipeline."""

from mvae_jax.data.pipeline import (DataError, WindowSet, check_can_fill, eval_batches,  # noqa: F401
                                    load_windows, train_dataset)
