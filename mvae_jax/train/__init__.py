"""Objective, schedules, train/eval steps, sharding, checkpoints and the loop."""
