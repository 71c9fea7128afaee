"""LinrCompileFilter against expectations computed from generated filter specs."""

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

SETTINGS = settings(max_examples=60, deadline=None, database=None)
BARE = re.compile(r"[A-Za-z0-9_.-]+\Z")
KEYS = ["__live__", "lang=en", "lang=fr", "lang=de", "type=post", "type=article",
        "topic=ai", "topic=ml", "country=us"]


def compile_np(filters, keys, **kwargs):
  clauses, num_clauses = ops.compile_filter(filters, keys, **kwargs)
  return clauses.numpy(), num_clauses.numpy()


def bit_word(keys, *names):
  """Expected clause row (int32 words) with the bits of the given keys."""
  w = max(1, -(-len(keys) // 32))
  row = np.zeros(w, np.uint32)
  for name in names:
    i = keys.index(name)
    row[i // 32] |= np.uint32(1 << (i % 32))
  return row.view(np.int32)


# ------------------------------------------------ generated filters (hypothesis)
def quote(value, style):
  """Renders a value as the filter language writes it."""
  if style == "bare" and BARE.match(value):
    return value
  q = "'" if style == "single" else '"'
  return q + value.replace("\\", "\\\\").replace(q, "\\" + q) + q


ATTR_NAMES = st.from_regex(r"[a-z][a-z0-9_.-]{0,5}", fullmatch=True).filter(
    lambda s: s.lower() not in ("and", "in"))
VALUES = st.text(alphabet="abcXYZ019_.-= \"'\\é,()", min_size=0, max_size=6)


@st.composite
def schema_and_filters(draw):
  attrs = draw(st.lists(ATTR_NAMES, min_size=1, max_size=5, unique=True))
  schema = {a: draw(st.lists(VALUES, min_size=1, max_size=9, unique=True))
            for a in attrs}
  keys = [f"{a}={v}" for a in attrs for v in schema[a]]
  keys += [f"__r{i}__" for i in range(draw(st.integers(0, 3)))]
  keys = draw(st.permutations(keys))
  filters = []
  for _ in range(draw(st.integers(1, 4))):
    spec = []
    for _ in range(draw(st.integers(0, 4))):
      attr = draw(st.sampled_from(attrs))
      values = draw(st.lists(st.sampled_from(schema[attr]), min_size=1, max_size=3))
      spec.append((attr, values))
    filters.append(spec)
  return keys, filters, draw(st.randoms(use_true_random=False))


def render(spec, rnd):
  """Filter text for a spec with random quoting, keyword case and spacing."""
  def kw(word):
    return "".join(c.upper() if rnd.random() < 0.5 else c.lower() for c in word)

  def sp():
    return rnd.choice(["", " ", "  ", "\t", "\n "])

  parts = []
  for attr, values in spec:
    vals = [quote(v, rnd.choice(["bare", "single", "double"])) for v in values]
    if len(vals) == 1 and rnd.random() < 0.5:
      parts.append(f"{sp()}{attr}{sp()}={sp()}{vals[0]}{sp()}")
    else:
      inner = ",".join(f"{sp()}{v}{sp()}" for v in vals)
      parts.append(f"{sp()}{attr} {kw('in')}{sp()}({inner}){sp()}")
  return (" " + kw("and") + " ").join(parts)


@SETTINGS
@given(schema_and_filters())
def test_generated_filters(case):
  keys, specs, rnd = case
  texts = [render(spec, rnd) for spec in specs]
  clauses, num_clauses = compile_np(texts, keys)
  w = max(1, -(-len(keys) // 32))
  c_max = max(len(spec) for spec in specs)
  assert clauses.shape == (len(specs), c_max, w)
  for b, spec in enumerate(specs):
    assert num_clauses[b] == len(spec), texts[b]
    for c, (attr, values) in enumerate(spec):
      expected = bit_word(keys, *[f"{attr}={v}" for v in values])
      np.testing.assert_array_equal(clauses[b, c], expected, err_msg=texts[b])
    assert not clauses[b, len(spec):].any()


# ------------------------------------------------------------------- examples
def test_quoting_styles_and_keyword_case():
  keys = KEYS + ['title=a "b"', "title=it's", "title=x\\y", "title=two words"]
  clauses, n = compile_np([
      'lang = "en"', "lang = 'en'", "lang=en", "lAnG = en",
      "type in (post, 'article')", "type In(\"post\")aNd lang=fr",
      'title IN ("a \\"b\\"", "it\'s", \'x\\\\y\', "two words")',
  ], keys + ["lAnG=en"])
  en = bit_word(keys, "lang=en")
  np.testing.assert_array_equal(clauses[0, 0], en)
  np.testing.assert_array_equal(clauses[1, 0], en)
  np.testing.assert_array_equal(clauses[2, 0], en)
  np.testing.assert_array_equal(n[:4], [1, 1, 1, 1])
  # Attribute names are case-sensitive: lAnG is its own attribute.
  np.testing.assert_array_equal(clauses[3, 0], bit_word(keys + ["lAnG=en"], "lAnG=en"))
  np.testing.assert_array_equal(clauses[4, 0], bit_word(keys, "type=post", "type=article"))
  np.testing.assert_array_equal(n[5], 2)
  np.testing.assert_array_equal(clauses[5, 1], bit_word(keys, "lang=fr"))
  np.testing.assert_array_equal(
      clauses[6, 0], bit_word(keys, 'title=a "b"', "title=it's", "title=x\\y",
                              "title=two words"))


def test_uppercase_attribute_is_unknown():
  with pytest.raises(tf.errors.InvalidArgumentError, match="unknown attribute 'LANG'"):
    compile_np(["LANG = en"], KEYS)


def test_keywords_as_values():
  keys = ["op=and", "op=in", "op=AND"]
  clauses, n = compile_np(["op = and AND op IN (in, 'AND')"], keys)
  np.testing.assert_array_equal(n, [2])
  np.testing.assert_array_equal(clauses[0, 0], bit_word(keys, "op=and"))
  np.testing.assert_array_equal(clauses[0, 1], bit_word(keys, "op=in", "op=AND"))


def test_empty_filters_pass_everything():
  clauses, n = compile_np(["", "   ", "\t\n"], KEYS)
  assert clauses.shape == (3, 0, 1)
  np.testing.assert_array_equal(n, [0, 0, 0])
  clauses, n = compile_np([], KEYS)
  assert clauses.shape == (0, 0, 1) and n.shape == (0,)


def test_padding_and_width():
  keys = [f"a=v{i}" for i in range(40)]  # NB = 40 -> W = 2
  clauses, n = compile_np(["a = v35", "a IN (v0, v33) AND a = v1", ""], keys)
  assert clauses.shape == (3, 2, 2)
  np.testing.assert_array_equal(n, [1, 2, 0])
  np.testing.assert_array_equal(clauses[0, 0], [0, 1 << 3])
  np.testing.assert_array_equal(clauses[1, 0], [1, 1 << 1])
  np.testing.assert_array_equal(clauses[0, 1], [0, 0])
  assert not clauses[2].any()
  # Bit 31 comes out as the int32 bit pattern.
  keys = [f"a=v{i}" for i in range(32)]
  clauses, _ = compile_np(["a = v31"], keys)
  assert clauses[0, 0, 0] == np.int32(-2**31)
  # No keys at all: W = 1.
  clauses, n = compile_np([""], [])
  assert clauses.shape == (1, 0, 1)


def test_match_none_unknown_value():
  clauses, n = compile_np(["lang = xx", "lang IN (xx, en) AND type = post"], KEYS,
                          unknown_value="match_none")
  np.testing.assert_array_equal(n, [1, 2])
  assert not clauses[0, 0].any()  # a clause without bits matches nothing
  np.testing.assert_array_equal(clauses[1, 0], bit_word(KEYS, "lang=en"))
  with pytest.raises(tf.errors.InvalidArgumentError, match="unknown attribute 'lnag'"):
    compile_np(["lnag = en"], KEYS, unknown_value="match_none")
  with pytest.raises(ValueError, match="unknown_value"):
    ops.compile_filter([""], KEYS, unknown_value="ignore")


ERRORS = [
    # (filter, filter index, message fragments)
    ("lnag = en", ["filter[1]", "unknown attribute 'lnag' at position 0",
                   "(known: country, lang, topic, type)"]),
    ("lang = xx", ["unknown value 'xx' for attribute 'lang' at position 7"]),
    ("type = post AND lang IN (en, 'zz')",
     ["unknown value 'zz' for attribute 'lang' at position 29"]),
    ("lang IN (en, fr", ["syntax error at position 15", "end of filter", "expected ',' or ')'"]),
    ("lang IN en", ["syntax error at position 8 near 'en'", "expected '('"]),
    ("lang = en fr", ["syntax error at position 10 near 'fr'", "expected AND"]),
    ("lang = en AND", ["syntax error at position 13", "expected an attribute name"]),
    ("lang = en )", ["syntax error at position 10 near ')'"]),
    ('lang = "en', ["syntax error at position 7", "'\"en'", "unterminated string"]),
    ("lang = 'en\\'", ["position 7", "unterminated string"]),
    ("lang IN ()", ["syntax error at position 9 near ')': expected a value"]),
    ("type IN (post, )", ["syntax error at position 15 near ')': expected a value"]),
    ("lang en", ["syntax error at position 5 near 'en'", "expected '=' or IN"]),
    ("lang == en", ["syntax error at position 6 near '='", "expected a value"]),
    ("lang != en", ["syntax error at position 5 near '!'", "unexpected character"]),
    ("= en", ["syntax error at position 0 near '='", "expected an attribute name"]),
    ("__live__ = 1", ["reserved attribute '__live__' at position 0"]),
    ("lang = en AND __live__ IN (x)", ["reserved attribute '__live__' at position 14"]),
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
    (["lang=en", "nokey"], "bit_keys[1] = 'nokey' is not of the form attr=value"),
    (["=en"], "bit_keys[0]"),
    (["lang=en", "lang=en"], "duplicate"),
])
def test_bad_bit_keys(keys, fragment):
  with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(fragment)):
    compile_np([""], keys)


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
  assert out.structured_outputs.clauses.shape.as_list() == [None, None, 1]
  assert out.structured_outputs.num_clauses.shape.as_list() == [None]
  clauses, n = compile_batch(tf.constant(["lang = en AND type = post"]))
  assert clauses.shape == (1, 2, 1) and n.numpy().tolist() == [2]
