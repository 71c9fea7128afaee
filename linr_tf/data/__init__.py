"""Data: the synthetic feed generator and the CSV loader that reads it (or yours)."""

from linr_tf.data.csv_io import Catalog, Interactions, read_items, read_interactions
from linr_tf.data.synthetic import generate_feed
