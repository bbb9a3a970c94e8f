"""NoteSequence <-> array encodings of MusicVAE: pure NumPy + note_seq, no JAX."""
