"""The synthetic feed generator and the CSV loader."""

import filecmp
import os

import numpy as np
import pytest

from conftest import small_config
from linr_tf import data as data_lib


def test_generator_is_seeded_and_deterministic(tmp_path):
  a = data_lib.generate_feed(str(tmp_path / "a"), 50, 120, 10, seed=5)
  b = data_lib.generate_feed(str(tmp_path / "b"), 50, 120, 10, seed=5)
  c = data_lib.generate_feed(str(tmp_path / "c"), 50, 120, 10, seed=6)
  assert filecmp.cmp(a["items"], b["items"], shallow=False)
  assert filecmp.cmp(a["interactions"], b["interactions"], shallow=False)
  assert not filecmp.cmp(a["items"], c["items"], shallow=False)


def test_planted_structure_language_and_topics(feed):
  cfg, catalog, log, _ = feed
  assert len(catalog) == 800 and len(log) == 300 * 20
  # Members mostly read one language: the top language share per user is high.
  users = log.columns["user_id"]
  langs = catalog.columns["lang"][log.item_pos]
  shares = []
  for u in np.unique(users):
    _, counts = np.unique(langs[users == u], return_counts=True)
    shares.append(counts.max() / counts.sum())
  assert np.mean(shares) > 0.8
  # Multi-valued topics exist and are '|'-separated.
  assert any("|" in t for t in catalog.columns["topic"])


def _write(path, text):
  with open(path, "w", encoding="utf-8") as f:
    f.write(text)
  return str(path)


HEADER = "item_id,topic,lang,country,type,age_hours\n"


def test_loader_rejects_missing_column(tmp_path):
  p = _write(tmp_path / "items.csv", "item_id,topic\np1,ai\n")
  with pytest.raises(ValueError, match=r"missing column\(s\).*lang"):
    data_lib.read_items(p, small_config())


def test_loader_rejects_bad_number_with_line(tmp_path):
  p = _write(tmp_path / "items.csv", HEADER + "p1,ai,en,us,post,3\n"
             "p2,ai,en,us,post,soon\n")
  with pytest.raises(ValueError, match=r"items.csv:3: column 'age_hours' must "
                     r"be numeric, got 'soon'"):
    data_lib.read_items(p, small_config())


def test_loader_rejects_duplicate_ids_and_ragged_rows(tmp_path):
  p = _write(tmp_path / "items.csv", HEADER + "p1,ai,en,us,post,3\n"
             "p1,ml,en,us,post,4\n")
  with pytest.raises(ValueError, match="duplicate item ids"):
    data_lib.read_items(p, small_config())
  p = _write(tmp_path / "items2.csv", HEADER + "p1,ai,en,us,post\n")
  with pytest.raises(ValueError, match="expected 6 fields, got 5"):
    data_lib.read_items(p, small_config())


def test_interactions_with_unknown_item_are_an_error_not_dropped(tmp_path):
  items = _write(tmp_path / "items.csv", HEADER + "p1,ai,en,us,post,3\n")
  inter = _write(tmp_path / "interactions.csv",
                 "user_id,item_id,timestamp\nu1,p1,10\nu1,p9,11\n")
  cfg = small_config()
  catalog = data_lib.read_items(items, cfg)
  with pytest.raises(ValueError, match=r"interactions.csv:3: item id 'p9' is "
                     r"not in the item catalog \(1 such rows\)"):
    data_lib.read_interactions(inter, cfg, catalog)


def test_loader_reads_generated_files_exactly(feed):
  cfg, catalog, log, d = feed
  with open(os.path.join(d, "items.csv"), encoding="utf-8") as f:
    lines = f.read().splitlines()
  first = lines[1].split(",")
  assert catalog.ids[0] == first[0]
  assert catalog.columns["topic"][0] == first[1]
  assert catalog.columns["age_hours"][0] == pytest.approx(float(first[5]))
  assert catalog.ids[log.item_pos[0]] == open(
      os.path.join(d, "interactions.csv"), encoding="utf-8"
  ).read().splitlines()[1].split(",")[1]
