"""`python -m linr_tf ...`: see linr_tf/cli.py."""

from linr_tf.cli import run

run()
