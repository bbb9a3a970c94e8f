"""Checkpoint interchange: Magenta TF checkpoints in and out, magenta.js export, bundles.

`tf_checkpoint` reads/writes TensorFlow's checkpoint format without TensorFlow; `magenta_names`
knows the variables Magenta builds for a config; `magenta_import`, `magentajs`, `bundle` and
`exporters` implement `mvae import` / `mvae export` (see docs/interop.md).
"""
