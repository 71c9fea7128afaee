"""Query an exported SavedModel with `name=value` features and a filter.

    from linr_tf import query
    ids, scores, count = query.query("out/demo/export/1", ["user_id=u1"],
                                     'lang = "en"', k=10)
    query.print_results('filter: lang = "en"', ids, scores, count)
"""

from typing import Dict, List, Sequence, Tuple

import numpy as np

import linr_tf
import tensorflow as tf

from linr_tf.errors import UsageError


def parse_query(pairs: Sequence[str], signature) -> Dict[str, tf.Tensor]:
  """`["user_id=u1", ...]` as the query inputs `signature` takes (batch 1)."""
  inputs = signature.structured_input_signature[1]
  names = sorted(n for n in inputs if n not in ("filter", "k"))
  features = {}
  for pair in pairs:
    name, sep, value = pair.partition("=")
    if not sep:
      raise UsageError(f"--query expects name=value, got {pair!r}")
    if name not in names:
      raise UsageError(f"unknown query feature '{name}' (this model takes "
                       f"{', '.join(names)})")
    dtype = inputs[name].dtype
    try:
      features[name] = tf.constant([float(value) if dtype.is_floating
                                    else value], dtype)
    except ValueError:
      raise UsageError(f"query feature '{name}' must be a number, got "
                       f"{value!r}") from None
  missing = [n for n in names if n not in features]
  if missing:
    raise UsageError(f"missing query feature(s) {missing}: pass --query "
                     f"{missing[0]}=...")
  return features


def query(model_dir: str, pairs: Sequence[str], filter_text: str = "",
          k: int = 10) -> Tuple[List[str], np.ndarray, int]:
  """(item ids, scores, count) of one query through `serving_default`."""
  loaded = linr_tf.load(model_dir)
  fn = loaded.signatures["serving_default"]
  feats = parse_query(pairs, fn)
  out = fn(filter=tf.constant([filter_text]), k=tf.constant(k, tf.int32),
           **feats)
  return ([x.decode() for x in out["item_ids"][0].numpy()],
          out["scores"][0].numpy(), int(out["count"][0]))


def print_results(title, ids, scores, count, extra=None) -> None:
  """Prints `title`, the count and one ranked line per result."""
  print(title)
  print(f"  {count} result(s)")
  for rank, (item, score) in enumerate(zip(ids[:count], scores[:count]), 1):
    note = f"  {extra[item]}" if extra else ""
    print(f"  {rank:3d}. {item:<10s} {score:+.4f}{note}")
