"""A seeded synthetic feed with planted structure, written as plain CSV.

Members have topic interests and a language; posts have topics (1-2, the first
one primary), a language, a country, a type and an age. Members mostly engage
with fresh posts on their topics in their language, so a retrieval model has
something real to learn and filters have something real to cut.

    from linr_tf.data import generate_feed
    generate_feed("out/data", num_users=2000, num_items=5000, seed=1)
    # -> out/data/items.csv, out/data/interactions.csv
"""

import csv
import os
from typing import Dict

import numpy as np

TOPICS = ("ai", "ml", "data", "cloud", "security", "jobs", "careers", "sales",
          "marketing", "design", "finance", "health", "energy", "climate",
          "sports", "travel", "food", "music", "film", "education")
LANGS = ("en", "de", "fr", "es", "pt", "ja")
LANG_WEIGHTS = (0.55, 0.12, 0.1, 0.1, 0.08, 0.05)
COUNTRIES = ("us", "gb", "de", "fr", "in", "br", "jp", "es")
COUNTRY_WEIGHTS = (0.3, 0.1, 0.12, 0.1, 0.15, 0.1, 0.05, 0.08)
TYPES = ("post", "article", "video", "job")
TYPE_WEIGHTS = (0.55, 0.2, 0.15, 0.1)


def generate_feed(out_dir: str, num_users: int = 2000, num_items: int = 5000,
                  interactions_per_user: int = 25, seed: int = 1,
                  ) -> Dict[str, str]:
  """Writes `items.csv` and `interactions.csv` under `out_dir`; returns paths."""
  if num_users <= 0 or num_items <= 0 or interactions_per_user <= 0:
    raise ValueError("num_users, num_items and interactions_per_user must be > 0")
  rng = np.random.default_rng(seed)
  n_topics = len(TOPICS)

  # Items.
  topic_pop = rng.zipf(1.6, n_topics).astype(np.float64)
  topic_pop /= topic_pop.sum()
  primary = rng.choice(n_topics, num_items, p=topic_pop)
  secondary = rng.integers(0, n_topics, num_items)
  has_second = (rng.random(num_items) < 0.35) & (secondary != primary)
  lang = rng.choice(len(LANGS), num_items, p=LANG_WEIGHTS)
  country = rng.choice(len(COUNTRIES), num_items, p=COUNTRY_WEIGHTS)
  ptype = rng.choice(len(TYPES), num_items, p=TYPE_WEIGHTS)
  age_hours = np.round(rng.exponential(96.0, num_items), 2)
  quality = rng.lognormal(0.0, 0.6, num_items)

  # Members: sparse topic interests and a main language.
  interests = rng.dirichlet(np.full(n_topics, 0.15), num_users)
  user_lang = rng.choice(len(LANGS), num_users, p=LANG_WEIGHTS)

  freshness = np.exp(-age_hours / 120.0)
  item_topics = np.zeros((num_items, n_topics))
  item_topics[np.arange(num_items), primary] = 1.0
  item_topics[np.arange(num_items)[has_second], secondary[has_second]] += 0.5
  base = quality * (0.2 + freshness)

  os.makedirs(out_dir, exist_ok=True)
  items_path = os.path.join(out_dir, "items.csv")
  with open(items_path, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["item_id", "topic", "lang", "country", "type", "age_hours"])
    for i in range(num_items):
      topics = TOPICS[primary[i]]
      if has_second[i]:
        topics += "|" + TOPICS[secondary[i]]
      w.writerow([f"p{i}", topics, LANGS[lang[i]], COUNTRIES[country[i]],
                  TYPES[ptype[i]], age_hours[i]])

  inter_path = os.path.join(out_dir, "interactions.csv")
  t0 = 1_764_000_000
  rows = []
  for u in range(num_users):
    affinity = item_topics @ interests[u]
    lang_match = np.where(lang == user_lang[u], 1.0, 0.05)
    p = affinity * lang_match * base + 1e-9
    p /= p.sum()
    picks = rng.choice(num_items, interactions_per_user, p=p)
    times = t0 + rng.integers(0, 30 * 86400, interactions_per_user)
    rows.extend((int(t), f"u{u}", f"p{i}") for t, i in zip(times, picks))
  rows.sort()
  with open(inter_path, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["user_id", "item_id", "timestamp"])
    for t, u, i in rows:
      w.writerow([u, i, t])
  return {"items": items_path, "interactions": inter_path}
