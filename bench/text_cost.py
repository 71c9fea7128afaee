"""Cost of the text dual encoder on this CPU (issue 17): embedding throughput
(items/s) of the pretrained MiniLM and of the small from-scratch encoder, and
the end-to-end latency of one text query through the SavedModel (prompt
string in, top-k ids out: tokenise + encode + search) over N items.

  PYTHONPATH=. .venv/bin/python bench/text_cost.py --items 1000000 --out bench/results/text.json

The index holds N random unit vectors of the served Matryoshka prefix (64
dims); the query tower is MiniLM (its first 64 dims), so the latency is what
a served pretrained text encoder costs. Results go under `cost` of --out
(other keys of an existing file are kept).
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import linr_tf  # noqa: E402,F401
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from linr_tf.attributes import AttributeSchema  # noqa: E402
from linr_tf.export import save_module  # noqa: E402
from linr_tf.index.item_index import ItemIndex  # noqa: E402
from linr_tf.text import (BertConfig, BertEncoder, ItemPrompt, PercentileBuckets,  # noqa: E402
                          PromptConfig, TextTokenizer, TextTower, minilm)
from linr_tf.text import export as text_export  # noqa: E402

CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "configs", "text_movielens.json")


def prompts(n, seed=0):
  rng = np.random.default_rng(seed)
  genres = ["Action", "Comedy", "Drama", "Thriller", "Romance", "Sci-Fi"]
  return [f"Movie number {i} of the catalogue ({1930 + i % 90}); genres: "
          f"{', '.join(rng.choice(genres, 2, replace=False))}; <year_percentile>{i % 100}"
          f"</year_percentile>; <popularity_percentile>{(7 * i) % 100}</popularity_percentile>"
          for i in range(n)]


def throughput(tower, texts, batch, seconds=8.0):
  fn = tf.function(lambda t: tower(t), input_signature=[tf.TensorSpec([None], tf.string)])
  chunks = [tf.constant(texts[i:i + batch]) for i in range(0, len(texts), batch)]
  fn(chunks[0]).numpy()
  n, t0, i = 0, time.perf_counter(), 0
  while time.perf_counter() - t0 < seconds:
    fn(chunks[i % len(chunks)]).numpy()
    n += int(chunks[i % len(chunks)].shape[0])
    i += 1
  return round(n / (time.perf_counter() - t0), 1)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--items", type=int, default=1_000_000)
  ap.add_argument("--prefix", type=int, default=64)
  ap.add_argument("--out", default="bench/results/text.json")
  ap.add_argument("--calls", type=int, default=30)
  args = ap.parse_args()
  cfg = json.load(open(CONFIG))
  pcfg = PromptConfig.from_dict(cfg["prompts"])
  vocab = minilm.read_vocab()
  tok = TextTokenizer(vocab, max_length=128, special_tokens=pcfg.special_tokens())
  texts = prompts(2048)
  pre = TextTower(tok, minilm.pretrained_encoder())
  e = cfg["bench"]["encoder"]
  small = TextTower(tok, BertEncoder(BertConfig.small(len(vocab), hidden_size=e["hidden"],
                                                      num_layers=e["layers"],
                                                      num_heads=e["heads"], max_position=128)),
                    output_dim=e["output_dim"])
  cost = {"machine": f"{os.cpu_count()} cores (shared with other jobs)",
          "prompt_tokens_mean": float(tok(tf.constant(texts))[1].numpy().sum(1).mean()),
          "cpu_items_per_s": {}}
  for name, tower in (("minilm_l6", pre), ("small_from_scratch", small)):
    for batch in (1, 64, 256):
      cost["cpu_items_per_s"][f"{name}_batch{batch}"] = throughput(tower, texts, batch)
      print(name, batch, cost["cpu_items_per_s"][f"{name}_batch{batch}"], flush=True)

  # One text query through the SavedModel over N items.
  rng = np.random.default_rng(0)
  n, d = args.items, args.prefix
  vec = rng.standard_normal((n, d), dtype=np.float32)
  vec /= np.linalg.norm(vec, axis=1, keepdims=True)
  genres = np.array(["Action", "Comedy", "Drama", "Thriller"], object)[rng.integers(0, 4, n)]
  schema = AttributeSchema.from_columns({"genres": genres})
  index = ItemIndex(d, schema.keys, capacity=n)
  index.assign(np.array([f"i{i}" for i in range(n)]), vec, schema.encode({"genres": genres}))
  buckets = PercentileBuckets.fit({f.name: np.arange(100.0) for f in pcfg.numeric_fields()})
  prompt = ItemPrompt(pcfg, buckets)
  module = text_export.TextRetrievalModule(pre, pre, prompt, index, prefix_dim=d)
  with tempfile.TemporaryDirectory() as tmp:
    t0 = time.perf_counter()
    path = save_module(module, os.path.join(tmp, "export"))
    export_s = time.perf_counter() - t0
    del module, index
    loaded = text_export.load(path)
    serve = loaded.signatures["serving_default"]
    by_emb = loaded.signatures["retrieve_embeddings"]
    member = ("<age_percentile>40</age_percentile>; occupation: writer; watched: "
              "Fargo (1996); genres: Crime, Drama, Thriller; <year_percentile>90</year_percentile>")
    lat, search = [], []
    q = tf.constant(rng.standard_normal((1, d), dtype=np.float32))
    for i in range(args.calls + 3):
      t0 = time.perf_counter()
      out = serve(member_text=tf.constant([member]), filter=tf.constant([""]),
                  k=tf.constant(10))
      out["item_ids"].numpy()
      lat.append(time.perf_counter() - t0)
      t0 = time.perf_counter()
      by_emb(query_embedding=q, filter=tf.constant([""]), k=tf.constant(10))["item_ids"].numpy()
      search.append(time.perf_counter() - t0)
    lat, search = np.array(lat[3:]) * 1e3, np.array(search[3:]) * 1e3
    cost["text_query_latency"] = {
        "items": n, "dim": d, "k": 10, "query_encoder": "minilm_l6 (first 64 dims)",
        "end_to_end_ms_p50": round(float(np.median(lat)), 2),
        "end_to_end_ms_p95": round(float(np.percentile(lat, 95)), 2),
        "search_only_ms_p50": round(float(np.median(search)), 2),
        "export_s": round(export_s, 1), "calls": args.calls}
  print(json.dumps(cost, indent=1))
  out = json.load(open(args.out)) if os.path.exists(args.out) else {}
  out["cost"] = cost
  out.setdefault("summary", {}).update({
      "cpu_items_per_s_minilm": max(v for k, v in cost["cpu_items_per_s"].items()
                                    if k.startswith("minilm")),
      "h200_items_per_s_minilm": None,   # bench/text_gpu.py, not run here (no GPU)
      "text_query_ms_p50_1m_items": cost["text_query_latency"]["end_to_end_ms_p50"]})
  with open(args.out, "w") as f:
    json.dump(out, f, indent=1)


if __name__ == "__main__":
  main()
