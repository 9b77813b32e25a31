"""Prints a run's TensorBoard scalars as TensorBoard itself reads them:
{tag: [[step, value], ...]} as JSON.

    python tests/reference/tensorboard_scalars.py RUN_DIR/tensorboard
"""
import json
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

acc = EventAccumulator(sys.argv[1], purge_orphaned_data=True)
acc.Reload()
print(json.dumps({tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}))
