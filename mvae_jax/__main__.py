"""`python -m mvae_jax ...` is `mvae ...` (tests and scripts call the CLI this way: no PATH)."""

import sys

from mvae_jax.cli import main

sys.exit(main())
