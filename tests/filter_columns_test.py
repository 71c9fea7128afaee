"""Column filters (exact numbers, value ids, per-request id sets) beside bitsets,
checked against an independent Python evaluator over the raw catalogue.

Random catalogues hold every kind: bitset categoricals (values with quotes,
backslashes, commas, unicode; multi-valued), int64 numbers (large, negative,
thresholds equal to values), float64 numbers, value-id attributes (single and
multi-valued, empty cells) and item ids. Random filter trees are rendered to
filter strings (values escaped) and evaluated in Python on the raw values;
the op's pass bitmap must match bit for bit.
"""

import random

import numpy as np
import pytest
import tensorflow as tf

from linr_tf import ops
from linr_tf.attributes import AttributeSchema
from linr_tf.column_filters import FilterColumns, column_pass_mask
from linr_tf.columns import ColumnSchema

ODD_VALUES = ["Children's", 'say "hi"', "back\\slash", "a,b", "Zürich", "東京", "O'Reilly",
              "plain", "x y", "=eq", "-"]
BIG = 2**62 + 12345


def quote(value: str) -> str:
  """A filter literal: double quotes, with backslash escapes."""
  return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def make_catalogue(rng: random.Random, n: int):
  genres = ODD_VALUES[:rng.randint(3, len(ODD_VALUES))]
  companies = [f"c{i}" for i in range(40)] + ["O'Reilly", "Women's"]
  authors = [f"a{i}" for i in range(30)] + ['q"uote']
  ints = [0, -1, 1, BIG, -BIG, 1500, 1499, 1501, 2**53 + 1, 2**53]
  cat = {
      "genre": ["|".join(rng.sample(genres, rng.randint(0, 2))) for _ in range(n)],
      "lang": [rng.choice(["en", "de", "fr"]) for _ in range(n)],
  }
  values = {
      "company": [rng.choice(companies + [""]) for _ in range(n)],
      "author": ["|".join(rng.sample(authors, rng.randint(0, 3))) for _ in range(n)],
  }
  numbers = {
      "followers": [rng.choice(ints) if rng.random() < 0.5 else rng.randint(-3000, 3000)
                    for _ in range(n)],
      "age": [rng.choice([0.0, -0.5, 24.0, 1e300, -2.5]) if rng.random() < 0.3
              else rng.uniform(-100, 100) for _ in range(n)],
  }
  ids = [f"item-{i}" for i in range(n)]
  return cat, values, numbers, ids


class Case:
  """A catalogue, its encoded stores and the tables the graph looks up in."""

  def __init__(self, seed: int, n: int):
    rng = random.Random(seed)
    self.rng = rng
    self.n = n
    self.cat, self.values, self.numbers, self.ids = make_catalogue(rng, n)
    self.bits_schema = AttributeSchema.from_columns(
        {k: np.array(v, object) for k, v in self.cat.items()})
    self.bits = self.bits_schema.encode({k: np.array(v, object) for k, v in self.cat.items()})
    # Known to the index: a subset of the values seen (the rest arrive later).
    self.columns = ColumnSchema.from_columns(
        {k: np.array(v, object) for k, v in self.values.items()},
        numbers={"followers": "int64", "age": "float64"})
    raw = {**{k: np.array(v, object) for k, v in self.values.items()},
           "followers": np.array(self.numbers["followers"], np.int64),
           "age": np.array(self.numbers["age"], np.float64)}
    self.number_store, self.value_store = self.columns.encode(raw)
    keys, vids = self.columns.value_keys()
    self.value_table = tf.lookup.experimental.MutableHashTable(tf.string, tf.int64, -1)
    self.value_table.insert(keys, vids)
    self.slot_table = tf.lookup.experimental.MutableHashTable(tf.string, tf.int64, -1)
    self.slot_table.insert(self.ids, np.arange(n, dtype=np.int64))

  def mask(self, filters, live=None):
    bits = self.bits if live is None else np.where(live[:, None], self.bits, 0)
    cols = FilterColumns(self.columns.number_specs, self.columns.value_specs,
                         self.value_table, self.slot_table, self.number_store,
                         self.value_store)
    out = column_pass_mask(tf.constant(filters), tf.constant(self.bits_schema.keys),
                           bits, cols)
    mask = out.mask.numpy().view(np.uint32)
    unpacked = ((mask[:, :, None] >> np.arange(32, dtype=np.uint32)) & 1).reshape(len(filters), -1)
    return unpacked[:, :self.n].astype(bool), out.count.numpy()

  # --- random predicates: (filter text, python evaluator over item i) -------

  def predicate(self):
    rng = self.rng
    kind = rng.choice(["genre", "lang", "company", "author", "followers", "age", "item_id"])
    if kind in ("genre", "lang"):
      known = self.bits_schema.values(kind)
      vals = rng.sample(known, min(len(known), rng.randint(1, 3)))
      cells = [set(c.split("|")) - {""} for c in self.cat[kind]]
      return self._categorical(kind, vals, cells, allow_unknown=False)
    if kind in ("company", "author"):
      pool = self.columns.vocabulary(kind) + ["never-seen", "Children's"]
      vals = rng.sample(pool, rng.randint(1, 3))
      cells = [set(c.split("|")) - {""} for c in self.values[kind]]
      return self._categorical(kind, vals, cells, allow_unknown=True)
    if kind == "item_id":
      chosen = rng.sample(self.ids, rng.randint(1, 5)) + (["missing-id"] if rng.random() < 0.5 else [])
      text = ", ".join(quote(v) for v in chosen)
      s = set(chosen)
      if rng.random() < 0.5:
        return f"item_id IN ({text})", lambda i: self.ids[i] in s
      return f"item_id NOT IN ({text})", lambda i: self.ids[i] not in s
    column = self.numbers[kind]
    if kind == "followers":
      t = rng.choice(column + [BIG, -BIG, 2**63 - 1, -2**63, 1500])
      literal = str(t)
      if rng.random() < 0.2:
        t = t + 0.5 if abs(t) < 2**50 else t
        literal = num(float(t)) if isinstance(t, float) else literal
    else:
      t = rng.choice(column + [0.0, 24.0, -0.5])
      literal = num(float(t))
    t = float(literal) if ("." in literal or "e" in literal) else int(literal)
    op = rng.choice(["<", "<=", ">", ">=", "=", "!=", "between"])
    if op == "between":
      u = rng.choice(column)
      u_literal = num(float(u)) if kind == "age" else str(u)
      return (f"{kind} BETWEEN {literal} AND {u_literal}",
              lambda i: exact_ge(column[i], t) and exact_ge(u, column[i]))
    cmp = {"<": lambda x: exact_ge(t, x) and not exact_eq(x, t),
           "<=": lambda x: exact_ge(t, x),
           ">": lambda x: exact_ge(x, t) and not exact_eq(x, t),
           ">=": lambda x: exact_ge(x, t),
           "=": lambda x: exact_eq(x, t),
           "!=": lambda x: not exact_eq(x, t)}[op]
    return f"{kind} {op} {literal}", lambda i: cmp(column[i])

  def _categorical(self, attr, vals, cells, allow_unknown):
    rng = self.rng
    text = ", ".join(quote(v) for v in vals)
    op = rng.choice(["=", "!=", "IN", "NOT IN", "ALL"])
    if op in ("=", "!="):
      v = vals[0]
      hit = lambda i: v in cells[i]
      return (f"{attr} {op} {quote(v)}", hit if op == "=" else (lambda i: not hit(i)))
    if op == "IN":
      return f"{attr} IN ({text})", lambda i: bool(cells[i] & set(vals))
    if op == "NOT IN":
      return f"{attr} NOT IN ({text})", lambda i: not cells[i] & set(vals)
    return f"{attr} ALL ({text})", lambda i: set(vals) <= cells[i]

  def expression(self, depth=0):
    rng = self.rng
    if depth >= 3 or rng.random() < 0.4:
      return self.predicate()
    op = rng.choice(["AND", "OR", "NOT"])
    if op == "NOT":
      text, fn = self.expression(depth + 1)
      return f"NOT ({text})", lambda i: not fn(i)
    parts = [self.expression(depth + 1) for _ in range(rng.randint(2, 3))]
    text = f" {op} ".join(f"({t})" for t, _ in parts)
    fns = [f for _, f in parts]
    if op == "AND":
      return text, lambda i: all(f(i) for f in fns)
    return text, lambda i: any(f(i) for f in fns)


def num(x: float) -> str:
  """A float literal of the filter language (no '+' in exponents)."""
  return repr(x).replace("e+", "e")


def exact_ge(a, b) -> bool:
  """a >= b exactly for ints and floats of any size (no float rounding of ints)."""
  from fractions import Fraction
  return Fraction(a) >= Fraction(b)


def exact_eq(a, b) -> bool:
  from fractions import Fraction
  return Fraction(a) == Fraction(b)


@pytest.mark.parametrize("seed", range(6))
def test_random_filters_match_python_evaluator(seed):
  case = Case(seed, n=300 + 37 * seed)
  exprs = [case.expression() for _ in range(24)]
  got, count = case.mask([t for t, _ in exprs])
  for b, (text, fn) in enumerate(exprs):
    want = np.array([fn(i) for i in range(case.n)])
    assert np.array_equal(got[b], want), (text, np.flatnonzero(got[b] != want)[:5])
    assert count[b] == want.sum()


def test_deleted_slots_never_pass():
  case = Case(11, n=200)
  live = np.arange(200) % 3 != 0
  got, _ = case.mask(['item_id IN ("item-0", "item-1")', "followers >= -99999999999"], live)
  assert got[0].tolist() == [i == 1 for i in range(200)]
  assert np.array_equal(got[1], live & (np.array(case.numbers["followers"]) >= -99999999999))


def test_exclusion_list_hits_and_misses():
  case = Case(3, n=500)
  seen = case.ids[::7] + [f"unknown-{i}" for i in range(50)]
  text = "item_id NOT IN (" + ", ".join(quote(s) for s in seen) + ")"
  got, count = case.mask([text])
  want = np.array([i % 7 != 0 for i in range(500)])
  assert np.array_equal(got[0], want) and count[0] == want.sum()


def test_unknown_values_match_nothing_without_error():
  case = Case(5, n=100)
  got, count = case.mask(['company = "brand-new"', 'company != "brand-new"',
                          'author ALL ("a1", "brand-new")', 'author IN ("brand-new")'])
  assert count.tolist() == [0, 100, 0, 0]


def test_int64_thresholds_are_exact_past_2_53():
  case = Case(1, n=64)
  store = case.number_store
  store[:4, 0] = [2**53, 2**53 + 1, BIG, -BIG]
  got, _ = case.mask([f"followers = {2**53 + 1}", f"followers > {2**53}",
                      f"followers <= {-BIG}", f"followers BETWEEN {BIG} AND {BIG}",
                      "followers < 9.3e18", "followers > 1e19"])
  f = store[:, 0]
  assert np.array_equal(got[0], f == 2**53 + 1)
  assert np.array_equal(got[1], f > 2**53)
  assert np.array_equal(got[2], f <= -BIG)
  assert np.array_equal(got[3], f == BIG)
  assert got[4].all() and not got[5].any()


def test_float_bounds_are_exact_at_zero_and_denormals():
  # TF runs CPU kernels with flush-to-zero / denormals-are-zero, under which a
  # float compare sees 5e-324 as 0: `age > 0.0` (lo = the next double up)
  # then passed items of age 0.0. Bounds and values compare as ordered keys.
  case = Case(3, n=64)
  tiny = np.nextafter(0.0, 1.0)
  values = [0.0, -0.0, tiny, -tiny, 1e-310, -1e-310, 2.2250738585072014e-308, 1.0, -1.0,
            np.inf, -np.inf]
  store = case.number_store
  age = store[:, 1].view(np.float64)
  age[:len(values)] = values
  cases = {"age > 0.0": age > 0, "age >= 0.0": age >= 0, "age < 0.0": age < 0,
           "age <= -0.0": age <= 0, "age = 0.0": age == 0, "age = -0.0": age == 0,
           "age != 0.0": age != 0, "age > 1e-310": age > 1e-310, "age < -1e-310": age < -1e-310,
           "age >= 5e-324": age >= tiny, "age BETWEEN -1e-310 AND 1e-310": np.abs(age) <= 1e-310,
           "age > 1.7976931348623157e308": age > np.finfo(np.float64).max,
           "age < -1.7976931348623157e308": age < -np.finfo(np.float64).max}
  got, count = case.mask(list(cases))
  for b, (text, want) in enumerate(cases.items()):
    assert np.array_equal(got[b], want), (text, np.flatnonzero(got[b] != want))
    assert count[b] == want.sum(), text


def test_errors_name_position_and_token():
  case = Case(2, n=10)
  cases = {
      "age IN (1)": "type mismatch at position 4 near 'IN'",
      "item_id < 3": "position 8 near '<'",
      "company < 3": "position 8 near '<'",
      "age <= x": "position 7: 'x' is not a number",
      "followers BETWEEN 1 2": "near '2': expected AND in BETWEEN",
      "nope = 1": "unknown attribute 'nope' at position 0",
  }
  for text, message in cases.items():
    with pytest.raises(tf.errors.InvalidArgumentError, match=message.replace("(", r"\(")):
      case.mask([text])


def test_id_list_over_the_limit_is_refused():
  case = Case(2, n=10)
  ids = ", ".join(f'"x{i}"' for i in range(ops.filter_ops.MAX_IDS_PER_QUERY + 1))
  with pytest.raises(tf.errors.InvalidArgumentError, match="too many item ids at position 8"):
    case.mask([f"item_id NOT IN ({ids})"])


def test_ids_up_to_the_limit_resolve_in_graph():
  case = Case(4, n=1000)
  ids = case.ids[:500] + [f"x{i}" for i in range(ops.filter_ops.MAX_IDS_PER_QUERY - 500)]
  got, count = case.mask(["item_id IN (" + ", ".join(quote(i) for i in ids) + ")"])
  assert count[0] == 500 and got[0][:500].all() and not got[0][500:].any()


def test_portable_path_isa_agrees():
  # The portable evaluator (EvalProgramWith per item) and the bit-sliced one agree.
  import os
  case = Case(9, n=333)
  exprs = [case.expression() for _ in range(12)]
  fast, _ = case.mask([t for t, _ in exprs])
  os.environ["LINR_CPU_ISA"] = "portable"
  try:
    slow, _ = case.mask([t for t, _ in exprs])
  finally:
    del os.environ["LINR_CPU_ISA"]
  assert np.array_equal(fast, slow)


def test_leaves_shared_by_queries_of_a_batch():
  # The same base filter with per-query exclusion lists (leaves shared across
  # the batch are evaluated once per block) equals each query alone.
  case = Case(21, n=5000)
  bases = [case.expression() for _ in range(3)]
  texts, fns = [], []
  for q in range(24):
    base_text, base_fn = bases[q % 3]
    seen = set(case.rng.sample(case.ids, 40))
    listed = ", ".join(quote(s) for s in sorted(seen))
    texts.append(f"({base_text}) AND item_id NOT IN ({listed})")
    fns.append(lambda i, f=base_fn, s=seen: f(i) and case.ids[i] not in s)
  got, count = case.mask(texts)
  for b, fn in enumerate(fns):
    want = np.array([fn(i) for i in range(case.n)])
    assert np.array_equal(got[b], want), texts[b][:200]
  alone = np.concatenate([case.mask([t])[0] for t in texts[:3]])
  assert np.array_equal(alone, got[:3])
