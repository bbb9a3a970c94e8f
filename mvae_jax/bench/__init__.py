"""`mvae bench`: flat against hierarchical decoders, the paper's experiments as one command.

suite (what to compare) -> runner (train or reuse, evaluate, resume) -> reconstruction,
interpolation, attributes_eval, throughput (one measurement each) -> report (md, json, PNG).
"""
