"""Flax modules of MusicVAE: Magenta-compatible LSTM, encoders, decoders, the VAE."""
