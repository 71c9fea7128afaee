"""The in-model item index and its adapters."""

from linr_tf.index.item_index import ItemIndex
from linr_tf.index.tfrs_topk import IndexTopK
