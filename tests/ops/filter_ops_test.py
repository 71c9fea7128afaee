"""LinrCompileFilter: generated filters checked against a reference evaluator.

Two independent pieces live here: a numpy evaluator of the program format of
custom_ops/filter/filter_program.h, and a reference evaluator of the filter
expression on item attribute values (sets of strings, numbers), never on bits.
Random schemas, items and expressions are compiled by the op, the program is
run on the items' bitsets, and both verdicts must agree.
"""

import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from hypothesis import given, settings, strategies as st  # noqa: E402

from linr_tf import ops  # noqa: E402
from linr_tf.ops import filter_ops  # noqa: E402

SETTINGS = settings(max_examples=100, deadline=None, database=None)
BARE = re.compile(r"[A-Za-z0-9_.-]+\Z")
KEYWORDS = ("and", "or", "not", "in", "all")
AGE_BOUNDS = [1, 6, 24, 72, 168, 720]
KEYS = (["__live__", "lang=en", "lang=fr", "lang=de", "type=post", "type=article",
         "topic=ai", "topic=ml", "topic=db", "country=us"]
        + ["age_hours@[,1)"]
        + [f"age_hours@[{lo},{hi})" for lo, hi in zip(AGE_BOUNDS[:-1], AGE_BOUNDS[1:])]
        + ["age_hours@[720,)"])


def compile_np(filters, keys, **kwargs):
  return ops.compile_filter(filters, keys, **kwargs).numpy()


# ----------------------------------------------------- program evaluator (numpy)
def run_program(program, item_bits):
  """Verdicts [N] of one program [L, 2 + W] on bitsets [N, W] (int32)."""
  n = item_bits.shape[0]
  stack = []
  max_depth = 0
  for row in program:
    op, mask = int(row[0]), row[filter_ops.PROGRAM_HEADER_WORDS:]
    assert row[1] == 0, "reserved word must be 0"
    if op == filter_ops.OP_NOP:
      assert not mask.any()
      continue
    if op == filter_ops.OP_ANY:
      stack.append(((item_bits & mask) != 0).any(axis=1))
    elif op == filter_ops.OP_ALL:
      stack.append(((mask & ~item_bits) == 0).all(axis=1))
    elif op in (filter_ops.OP_TRUE, filter_ops.OP_FALSE):
      stack.append(np.full(n, op == filter_ops.OP_TRUE))
    elif op in (filter_ops.OP_AND, filter_ops.OP_OR):
      b, a = stack.pop(), stack.pop()
      stack.append(a & b if op == filter_ops.OP_AND else a | b)
    elif op == filter_ops.OP_NOT:
      stack.append(~stack.pop())
    else:
      raise AssertionError(f"unknown opcode {op}")
    max_depth = max(max_depth, len(stack))
  assert len(stack) == 1, "program must leave exactly one value"
  assert max_depth <= filter_ops.MAX_PROGRAM_STACK
  return stack[0]


def instructions(program):
  """Opcodes of a program without the kNop padding."""
  return [int(op) for op in program[:, 0] if op != filter_ops.OP_NOP]


def bits_of(keys, *names):
  """int32 words with the bits of the given keys set."""
  w = max(1, -(-len(keys) // 32))
  row = np.zeros(w, np.uint32)
  for name in names:
    i = keys.index(name)
    row[i // 32] |= np.uint32(1 << (i % 32))
  return row.view(np.int32)


# ----------------------------------------------- reference evaluator (values)
# Expressions: ("pred", attr, op, values) | ("not", e) | ("and", [e..]) | ("or", [e..])
def reference(expr, item):
  """Truth of `expr` for one item {attr: set of values | float}."""
  kind = expr[0]
  if kind == "not":
    return not reference(expr[1], item)
  if kind == "and":
    return all(reference(e, item) for e in expr[1])
  if kind == "or":
    return any(reference(e, item) for e in expr[1])
  _, attr, op, values = expr
  held = item[attr]
  if op == "=":
    return values[0] in held
  if op == "!=":
    return values[0] not in held
  if op == "IN":
    return bool(held & set(values))
  if op == "NOT IN":
    return not held & set(values)
  if op == "ALL":
    return set(values) <= held
  if op == "<":
    return held < float(values[0])
  if op == ">=":
    return held >= float(values[0])
  raise AssertionError(op)


# ------------------------------------------------------- rendering as text
def quote(value, style):
  """A value as the filter language writes it."""
  if style == "bare" and BARE.match(value):
    return value
  q = "'" if style == "single" else '"'
  return q + value.replace("\\", "\\\\").replace(q, "\\" + q) + q


def render(expr, rnd):
  """Filter text with random quoting, keyword case, spacing and extra parens."""
  def kw(word):
    return "".join(c.upper() if rnd.random() < 0.5 else c.lower() for c in word)

  level = {"or": 0, "and": 1, "not": 2, "pred": 3}

  def tokens(e, min_level):
    out = []
    kind = e[0]
    if kind == "pred":
      _, attr, op, values = e
      vals = [v if op in ("<", ">=") else quote(v, rnd.choice(["bare", "single", "double"]))
              for v in values]
      out.append(attr)
      if op in ("IN", "NOT IN", "ALL"):
        out += [kw(w) for w in op.split()] + ["("]
        for i, v in enumerate(vals):
          out += ([","] if i else []) + [v]
        out.append(")")
      else:
        out += [op, vals[0]]
    elif kind == "not":
      out = [kw("not")] + tokens(e[1], level["not"])
    else:
      for i, child in enumerate(e[1]):
        if i:
          out.append(kw(kind))
        out += tokens(child, level[kind] + 1 if kind == "and" else level["and"])
    if level[kind] < min_level or rnd.random() < 0.15:
      out = ["("] + out + [")"]
    return out

  parts = tokens(expr, 0)
  text = ""
  for i, tok in enumerate(parts):
    if i:
      both_words = BARE.match(parts[i - 1]) and BARE.match(tok)
      text += rnd.choice([" ", "  ", "\t", "\n "] + ([] if both_words else ["", ""]))
    text += tok
  return text


# ----------------------------------------------------- generated cases
ATTR_NAMES = st.from_regex(r"[a-z][a-z0-9_.-]{0,5}", fullmatch=True).filter(
    lambda s: s not in KEYWORDS)
VALUES = st.text(alphabet="abcXYZ019_.-= \"'\\é,()<>!", min_size=0, max_size=6)
BOUNDS = st.lists(st.integers(-60, 60), max_size=5, unique=True).map(
    lambda xs: sorted(x / 4 for x in xs))


def number_text(x, rnd):
  """A number in one of several spellings (all the same double)."""
  forms = [repr(float(x)), f"{x:.4f}"]
  if float(x).is_integer():
    forms.append(str(int(x)))
  return rnd.choice(forms)


@st.composite
def cases(draw):
  names = draw(st.lists(ATTR_NAMES, min_size=1, max_size=5, unique=True))
  schema = {}  # attr -> ("cat", values, multi) | ("num", boundaries)
  for i, name in enumerate(names):
    if i > 0 and draw(st.booleans()):
      schema[name] = ("num", draw(BOUNDS))
    else:
      schema[name] = ("cat", draw(st.lists(VALUES, min_size=1, max_size=8, unique=True)),
                      draw(st.booleans()))
  match_none = draw(st.booleans())
  rnd = draw(st.randoms(use_true_random=False))

  # Bit keys in this test's own spelling, reserved keys mixed in, shuffled.
  keys = []
  for name, spec in schema.items():
    if spec[0] == "cat":
      keys += [f"{name}={v}" for v in spec[1]]
    else:
      edges = [""] + [repr(b) for b in spec[1]] + [""]
      keys += [f"{name}@[{lo},{hi})" for lo, hi in zip(edges[:-1], edges[1:])]
  keys += ["__live__"] + [f"__r{i}__" for i in range(draw(st.integers(0, 40)))]
  keys = draw(st.permutations(keys))

  # Items: value sets / numbers, and their bitsets built here from the keys.
  n = 48
  items = []
  for _ in range(n):
    item = {}
    for name, spec in schema.items():
      if spec[0] == "cat":
        if spec[2]:
          item[name] = {v for v in spec[1] if rnd.random() < 0.4}
        else:
          item[name] = {rnd.choice(spec[1])} if rnd.random() < 0.9 else set()
      else:
        pool = list(spec[1]) + [rnd.randint(-130, 130) / 8 for _ in range(3)]
        item[name] = float(rnd.choice(pool))
    items.append(item)
  bit = {k: i for i, k in enumerate(keys)}
  words = max(1, -(-len(keys) // 32))
  item_bits = np.zeros((n, words), np.uint32)
  for row, item in enumerate(items):
    on = [i for i, k in enumerate(keys) if k.startswith("__") and rnd.random() < 0.5]
    for name, spec in schema.items():
      if spec[0] == "cat":
        on += [bit[f"{name}={v}"] for v in item[name]]
      else:
        bucket = sum(1 for b in spec[1] if b <= item[name])
        edges = [""] + [repr(b) for b in spec[1]] + [""]
        on.append(bit[f"{name}@[{edges[bucket]},{edges[bucket + 1]})"])
    for i in on:
      item_bits[row, i // 32] |= np.uint32(1 << (i % 32))

  usable = [a for a, s in schema.items() if s[0] == "cat" or s[1]]

  def predicate():
    name = draw(st.sampled_from(usable))
    spec = schema[name]
    if spec[0] == "num":
      op = draw(st.sampled_from(["<", ">="]))
      return ("pred", name, op, [number_text(draw(st.sampled_from(spec[1])), rnd)])
    vocab = list(spec[1])
    if match_none:
      vocab.append("zz-unknown")
    op = draw(st.sampled_from(["=", "!=", "IN", "NOT IN", "ALL"]))
    count = 1 if op in ("=", "!=") else draw(st.integers(1, 4))
    return ("pred", name, op, [draw(st.sampled_from(vocab)) for _ in range(count)])

  def expression(depth):
    kind = draw(st.sampled_from(["pred"] * 2 + (["not", "and", "or"] if depth else [])))
    if kind == "pred":
      return predicate()
    if kind == "not":
      return ("not", expression(depth - 1))
    return (kind, [expression(depth - 1) for _ in range(draw(st.integers(2, 4)))])

  exprs = [expression(draw(st.integers(0, 4))) for _ in range(draw(st.integers(1, 4)))]
  return keys, items, item_bits.view(np.int32), exprs, match_none, rnd


@SETTINGS
@given(cases())
def test_generated_filters_match_reference(case):
  keys, items, item_bits, exprs, match_none, rnd = case
  texts = [render(e, rnd) for e in exprs]
  program = compile_np(texts, keys,
                       unknown_value="match_none" if match_none else "error")
  words = max(1, -(-len(keys) // 32))
  assert program.shape[0] == len(texts) and program.shape[2] == 2 + words
  for b, (expr, text) in enumerate(zip(exprs, texts)):
    got = run_program(program[b], item_bits)
    want = np.array([reference(expr, item) for item in items])
    np.testing.assert_array_equal(got, want, err_msg=f"{text!r}\nkeys={keys}")


# ------------------------------------------------------------------- examples
def evaluate(text, keys, item_bits, **kwargs):
  return run_program(compile_np([text], keys, **kwargs)[0], item_bits)


def items_from(keys, *rows):
  """Bitsets [N, W] of items given as lists of key names."""
  return np.stack([bits_of(keys, *row) for row in rows])


def test_language_features_on_items():
  items = items_from(
      KEYS,
      ["lang=en", "topic=ai", "topic=ml", "type=post", "age_hours@[,1)"],
      ["lang=fr", "topic=ai", "type=article", "age_hours@[24,72)"],
      ["lang=de", "topic=ml", "topic=db", "type=post", "age_hours@[720,)"],
      ["lang=en", "type=article", "age_hours@[6,24)"])
  cases_ = {
      'lang = "en"': [1, 0, 0, 1],
      "lang != en": [0, 1, 1, 0],
      "lang IN (en, de)": [1, 0, 1, 1],
      "lang NOT IN (en, de)": [0, 1, 0, 0],
      "topic = ml": [1, 0, 1, 0],
      "topic ALL (ai, ml)": [1, 0, 0, 0],
      "topic ALL (ml)": [1, 0, 1, 0],
      "topic IN (ai, ml)": [1, 1, 1, 0],
      "topic != ai": [0, 0, 1, 1],
      "age_hours < 24": [1, 0, 0, 1],
      "age_hours >= 24": [0, 1, 1, 0],
      "age_hours >= 720": [0, 0, 1, 0],
      "age_hours < 1": [1, 0, 0, 0],
      "age_hours >= 6 AND age_hours < 72": [0, 1, 0, 1],
      "NOT lang = en": [0, 1, 1, 0],
      "NOT NOT lang = en": [1, 0, 0, 1],
      "lang = en OR type = post AND lang = fr": [1, 0, 0, 1],
      "(lang = en OR type = post) AND lang = de": [0, 0, 1, 0],
      "NOT lang = en AND type = post": [0, 0, 1, 0],
      "NOT (lang = en AND type = post)": [0, 1, 1, 1],
      "lang = fr OR topic ALL (ml, db) OR age_hours < 1": [1, 1, 1, 0],
  }
  for text, want in cases_.items():
    got = evaluate(text, KEYS, items)
    np.testing.assert_array_equal(got, np.array(want, bool), err_msg=text)


def test_keywords_are_case_insensitive():
  items = items_from(KEYS, ["lang=en", "topic=ai", "age_hours@[,1)"],
                     ["lang=fr", "topic=ml", "age_hours@[720,)"])
  for text in ["lang in (en) aNd NoT topic = ml oR age_hours >= 720",
               "lang In (en) AND not topic = ml Or age_hours >= 720",
               "lang IN (en) AND topic not in (ml) OR age_hours >= 720",
               "lang In(en)AND(topic aLl(ai))OR(age_hours>=720)"]:
    np.testing.assert_array_equal(evaluate(text, KEYS, items), [True, True], err_msg=text)
  # Attribute names and values are case-sensitive.
  with pytest.raises(tf.errors.InvalidArgumentError, match="unknown attribute 'LANG'"):
    compile_np(["LANG = en"], KEYS)
  with pytest.raises(tf.errors.InvalidArgumentError, match="unknown value 'EN'"):
    compile_np(["lang = EN"], KEYS)


def test_quoting_styles():
  keys = KEYS + ['title=a "b"', "title=it's", "title=x\\y", "title=two words",
                 "title=AND", "title=(x, y)", "title="]
  program = compile_np([
      'title = "a \\"b\\""', "title = 'it\\'s'", "title = 'x\\\\y'", 'title = "two words"',
      "title = 'AND'", 'title = "(x, y)"', 'title = ""', "title = AND",
  ], keys)
  for b, key in enumerate(['title=a "b"', "title=it's", "title=x\\y", "title=two words",
                           "title=AND", "title=(x, y)", "title=", "title=AND"]):
    assert instructions(program[b]) == [filter_ops.OP_ANY]
    np.testing.assert_array_equal(program[b, 0, 2:], bits_of(keys, key))


def test_keywords_as_values():
  keys = ["op=and", "op=in", "op=AND", "op=not", "op=all", "op=or"]
  items = items_from(keys, ["op=and"], ["op=in"], ["op=not", "op=all"], ["op=or"])
  got = evaluate("op = and OR op IN (in, not) AND op ALL (all, not) OR op = or", keys, items)
  np.testing.assert_array_equal(got, [True, False, True, True])


def test_numbers_in_several_spellings():
  keys = ["t@[,-1.5)", "t@[-1.5,0.25)", "t@[0.25,1e3)", "t@[1e3,)"]
  items = items_from(keys, ["t@[,-1.5)"], ["t@[-1.5,0.25)"], ["t@[0.25,1e3)"], ["t@[1e3,)"])
  for text, want in [("t < -1.5", [1, 0, 0, 0]), ("t >= -1.50", [0, 1, 1, 1]),
                     ("t < .25", [1, 1, 0, 0]), ("t >= 0.250", [0, 0, 1, 1]),
                     ("t >= 1000", [0, 0, 0, 1]), ("t < 1e3", [1, 1, 1, 0]),
                     ("t>=1000.0", [0, 0, 0, 1]), ("t < '1000'", [1, 1, 1, 0])]:
    np.testing.assert_array_equal(evaluate(text, keys, items), np.array(want, bool),
                                  err_msg=text)


def test_compact_programs():
  program = compile_np([
      "lang IN (en, fr, de)",                 # one kAny
      "lang = en OR lang = fr OR topic = ai",  # OR of kAny merges
      "lang = en AND type = post",            # one-bit leaves merge into kAll
      "lang IN (en, fr) AND type IN (post, article)",  # stays two kAny + kAnd
      "topic ALL (ai, ml) AND topic ALL (db)",  # AND of kAll merges
      "NOT NOT lang = en",
      "age_hours >= 24",
  ], KEYS)
  any_, all_, and_, not_ = (filter_ops.OP_ANY, filter_ops.OP_ALL, filter_ops.OP_AND,
                            filter_ops.OP_NOT)
  assert instructions(program[0]) == [any_]
  np.testing.assert_array_equal(program[0, 0, 2:], bits_of(KEYS, "lang=en", "lang=fr", "lang=de"))
  assert instructions(program[1]) == [any_]
  np.testing.assert_array_equal(program[1, 0, 2:], bits_of(KEYS, "lang=en", "lang=fr", "topic=ai"))
  assert instructions(program[2]) == [all_]
  np.testing.assert_array_equal(program[2, 0, 2:], bits_of(KEYS, "lang=en", "type=post"))
  assert instructions(program[3]) == [any_, any_, and_]
  assert instructions(program[4]) == [all_]
  assert instructions(program[5]) == [any_]
  assert instructions(program[6]) == [any_]
  np.testing.assert_array_equal(
      program[6, 0, 2:], bits_of(KEYS, "age_hours@[24,72)", "age_hours@[72,168)",
                                 "age_hours@[168,720)", "age_hours@[720,)"))
  program = compile_np(["lang != en"], KEYS)
  assert instructions(program[0]) == [any_, not_]


def test_empty_filters_pass_everything():
  program = compile_np(["", "   ", "\t\n"], KEYS)
  assert program.shape == (3, 1, 3)
  assert (program[:, 0, 0] == filter_ops.OP_TRUE).all() and not program[:, 0, 1:].any()
  program = compile_np([], KEYS)
  assert program.shape == (0, 1, 3)


def test_padding_and_width():
  keys = [f"a=v{i}" for i in range(40)]  # NB = 40 -> W = 2
  program = compile_np(["a = v35", "a IN (v0, v33) AND NOT a = v1", ""], keys)
  assert program.shape == (3, 4, 4)
  np.testing.assert_array_equal(program[0, 0], [filter_ops.OP_ANY, 0, 0, 1 << 3])
  assert not program[0, 1:].any()  # kNop padding is all zeros
  assert instructions(program[1]) == [filter_ops.OP_ANY, filter_ops.OP_ANY,
                                      filter_ops.OP_NOT, filter_ops.OP_AND]
  # Bit 31 comes out as the int32 bit pattern.
  keys = [f"a=v{i}" for i in range(32)]
  assert compile_np(["a = v31"], keys)[0, 0, 2] == np.int32(-2**31)
  # No keys at all: W = 1.
  assert compile_np([""], []).shape == (1, 1, 3)


def test_match_none_unknown_value():
  items = items_from(KEYS, ["lang=en", "topic=ai", "type=post"], ["lang=fr", "type=post"])
  cases_ = {
      "lang = xx": [0, 0],
      "lang != xx": [1, 1],
      "lang IN (xx, en)": [1, 0],
      "lang IN (xx, yy)": [0, 0],
      "lang NOT IN (xx, en)": [0, 1],
      "topic ALL (ai, xx)": [0, 0],
      "lang = xx OR type = post": [1, 1],
  }
  for text, want in cases_.items():
    got = evaluate(text, KEYS, items, unknown_value="match_none")
    np.testing.assert_array_equal(got, np.array(want, bool), err_msg=text)
  program = compile_np(["lang = xx"], KEYS, unknown_value="match_none")
  assert instructions(program[0]) == [filter_ops.OP_FALSE]
  with pytest.raises(tf.errors.InvalidArgumentError, match="unknown attribute 'lnag'"):
    compile_np(["lnag = en"], KEYS, unknown_value="match_none")
  with pytest.raises(ValueError, match="unknown_value"):
    ops.compile_filter([""], KEYS, unknown_value="ignore")


def test_nesting_limit():
  items = items_from(KEYS, ["lang=en"], ["lang=fr"])
  ok = "(" * 64 + "lang = en" + ")" * 64
  np.testing.assert_array_equal(evaluate(ok, KEYS, items), [True, False])
  np.testing.assert_array_equal(evaluate("NOT " * 64 + "lang = en", KEYS, items),
                                [True, False])
  deep_alternating = "lang = fr"
  for i in range(30):
    deep_alternating = (f"lang = de {'AND' if i % 2 else 'OR'} ({deep_alternating})")
  program = compile_np([deep_alternating], KEYS)
  run_program(program[0], items)  # checks the stack stays within 64
  for text, position in [("(" * 65 + "lang = en" + ")" * 65, 64),
                         ("NOT " * 65 + "lang = en", 256),
                         ("(NOT " * 33 + "lang = en" + ")" * 33, 160)]:
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
      compile_np([text], KEYS)
    assert (f"filter nested too deeply at position {position}" in info.value.message
            and "more than 64 levels" in info.value.message), info.value.message


ERRORS = [
    # (filter, message fragments); compiled as filter[1]
    ("lnag = en", ["unknown attribute 'lnag' at position 0",
                   "(known: age_hours, country, lang, topic, type)"]),
    ("lang = xx", ["unknown value 'xx' for attribute 'lang' at position 7",
                   "(known: de, en, fr)"]),
    ("type = post AND lang IN (en, 'zz')",
     ["unknown value 'zz' for attribute 'lang' at position 29"]),
    ("topic ALL (ai, qq)", ["unknown value 'qq' for attribute 'topic' at position 15"]),
    ("lang IN (en, fr", ["syntax error at position 15 near end of filter",
                         "expected ',' or ')'"]),
    ("lang IN en", ["syntax error at position 8 near 'en'", "expected '(' after IN"]),
    ("topic ALL ai", ["syntax error at position 10 near 'ai'", "expected '(' after ALL"]),
    ("lang = en fr", ["syntax error at position 10 near 'fr'",
                      "expected AND, OR or end of filter"]),
    ("lang = en AND", ["syntax error at position 13 near end of filter",
                       "expected an attribute name"]),
    ("lang = en OR OR lang = fr", ["syntax error at position 13 near 'OR'",
                                   "expected an attribute name"]),
    ("lang = en )", ["syntax error at position 10 near ')'"]),
    ("(lang = en", ["syntax error at position 10 near end of filter", "expected AND, OR or ')'"]),
    ('lang = "en', ["syntax error at position 7", "'\"en'", "unterminated string"]),
    ("lang = 'en\\'", ["syntax error at position 7", "unterminated string"]),
    ("lang IN ()", ["syntax error at position 9 near ')'", "empty IN list"]),
    ("lang NOT IN ( )", ["syntax error at position 14 near ')'", "empty IN list"]),
    ("topic ALL ()", ["syntax error at position 11 near ')'", "empty ALL list"]),
    ("type IN (post, )", ["syntax error at position 15 near ')': expected a value"]),
    ("lang en", ["syntax error at position 5 near 'en'", "expected =, !=, <"]),
    ("lang NOT en", ["syntax error at position 9 near 'en'", "expected IN after NOT"]),
    ("lang == en", ["syntax error at position 6 near '='", "expected a value"]),
    ("lang ! en", ["syntax error at position 5 near '!'", "unexpected character"]),
    ("lang = en; x", ["syntax error at position 9 near ';'", "unexpected character"]),
    ("= en", ["syntax error at position 0 near '='", "expected an attribute name"]),
    ("NOT", ["syntax error at position 3 near end of filter", "expected an attribute name"]),
    ("in = en", ["syntax error at position 0 near 'in'", "expected an attribute name"]),
    ("__live__ = 1", ["reserved attribute '__live__' at position 0"]),
    ("lang = en AND __live__ IN (x)", ["reserved attribute '__live__' at position 14"]),
    ("lang < 3", ["type mismatch at position 5 near '<'", "attribute 'lang' is categorical"]),
    ("lang >= en", ["type mismatch at position 5 near '>='"]),
    ("age_hours = 24", ["type mismatch at position 10 near '='",
                        "attribute 'age_hours' is numeric",
                        "(boundaries: 1, 6, 24, 72, 168, 720)"]),
    ("age_hours NOT IN (1)", ["type mismatch at position 10 near 'NOT IN'"]),
    ("age_hours all (1)", ["type mismatch at position 10 near 'all'"]),
    ("lang = en AND age_hours < 30",
     ["age_hours < 30 at position 26: 30 is not a bucket boundary of 'age_hours' "
      "(boundaries: 1, 6, 24, 72, 168, 720)"]),
    ("age_hours >= 0", ["age_hours >= 0 at position 13: 0 is not a bucket boundary"]),
    ("age_hours <= 24", ["age_hours <= 24 at position 10: '<=' is not exact",
                         "use 'age_hours < 24'", "(boundaries: 1, 6, 24, 72, 168, 720)"]),
    ("age_hours > 24", ["age_hours > 24 at position 10: '>' is not exact",
                        "use 'age_hours >= 24'"]),
    ("age_hours > 25", ["'>' is not exact", "use '>=' with a bucket boundary"]),
    ("age_hours < abc", ["age_hours < abc at position 12: 'abc' is not a number"]),
    ("age_hours < 1x", ["'1x' is not a number"]),
    ("age_hours < inf", ["'inf' is not a number"]),
]


@pytest.mark.parametrize("text,fragments", ERRORS)
def test_errors(text, fragments):
  with pytest.raises(tf.errors.InvalidArgumentError) as info:
    compile_np(["lang = en", text], KEYS)
  message = info.value.message
  assert "filter[1]:" in message
  for fragment in fragments:
    assert fragment in message, message


@pytest.mark.parametrize("keys,fragment", [
    (["lang=en", "nokey"], "bit_keys[1] = 'nokey' is not of the form attr=value or attr@[lo,hi)"),
    (["=en"], "bit_keys[0]"),
    (["@[,)"], "bit_keys[0]"),
    (["lang=en", "lang=en"], "duplicate"),
    (["a@[,1)", "a@[1,)", "a=x"], "both categorical"),
    (["a@[,1)", "a@[1,x)"], "bit_keys[1] = 'a@[1,x)' is not a numeric bucket"),
    (["a@[,1"], "is not a numeric bucket"),
    (["a@[,1)", "a@[2,)"], "buckets of numeric attribute 'a' ([,1), [2,)) must tile"),
    (["a@[,1)"], "must tile"),
    (["a@[1,)"], "must tile"),
    (["a@[,1)", "a@[1,1)", "a@[1,)"], "must tile"),
    (["a@[,1)", "a@[,1)", "a@[1,)"], "must tile"),
])
def test_bad_bit_keys(keys, fragment):
  with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(fragment)):
    compile_np([""], keys)


def test_numeric_keys_any_order_and_single_bucket():
  keys = ["a@[5,)", "__live__", "a@[,-2)", "a@[-2,5)", "b@[,)", "c=x"]
  items = items_from(keys, ["a@[,-2)", "b@[,)"], ["a@[-2,5)", "b@[,)"], ["a@[5,)", "b@[,)"])
  np.testing.assert_array_equal(evaluate("a >= -2", keys, items), [False, True, True])
  np.testing.assert_array_equal(evaluate("a < 5.0", keys, items), [True, True, False])
  with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(
      "b < 1 at position 4: 1 is not a bucket boundary of 'b' (boundaries: none)")):
    compile_np(["b < 1"], keys)


def test_bad_ranks():
  with pytest.raises(tf.errors.InvalidArgumentError, match="filters must be rank 1"):
    ops.compile_filter("lang = en", KEYS)
  with pytest.raises(tf.errors.InvalidArgumentError, match="bit_keys must be rank 1"):
    ops.compile_filter(["lang = en"], [KEYS])

  @tf.function
  def compile_matrix(filters):
    return ops.compile_filter(filters, KEYS)
  with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="rank"):
    compile_matrix.get_concrete_function(tf.TensorSpec([2, 2], tf.string))


def test_graph_shapes():
  @tf.function
  def compile_batch(filters):
    return ops.compile_filter(filters, KEYS)
  out = compile_batch.get_concrete_function(tf.TensorSpec([None], tf.string))
  assert out.structured_outputs.shape.as_list() == [None, None, 3]
  program = compile_batch(tf.constant(["lang = en AND type = post OR topic = ai"]))
  assert program.shape == (1, 3, 3)


def test_opcodes_mirror_header():
  header = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__)))), "custom_ops", "filter", "filter_program.h")
  if not os.path.exists(header):
    pytest.skip("header not shipped with this test")
  text = open(header).read()
  for name in ["NOP", "ANY", "ALL", "AND", "OR", "NOT", "TRUE", "FALSE"]:
    value = re.search(rf"\bk{name.capitalize()} = (\d+),", text).group(1)
    assert getattr(filter_ops, f"OP_{name}") == int(value), name
  assert f"kMaxProgramStack = {filter_ops.MAX_PROGRAM_STACK};" in text
  assert f"kProgramHeaderWords = {filter_ops.PROGRAM_HEADER_WORDS};" in text
