"""AttributeSchema (bit keys, encode) and compile_filters (live check appended)."""

import numpy as np
import pytest
import tensorflow as tf

from linr_tf import attributes as attributes_lib
from linr_tf import ops
from linr_tf.attributes import AttributeSchema
from linr_tf.ops import filter_ops

AGE_BOUNDS = [1, 6, 24, 72, 168, 720]


def bit_list(bits, num_keys):
  """Row-wise indices of the set bits of int32 bitsets [N, W]."""
  flat = np.unpackbits(bits.view(np.uint8), axis=1, bitorder="little")[:, :num_keys]
  return [list(np.flatnonzero(row)) for row in flat]


def test_format_number_and_bucket_keys():
  fmt = attributes_lib.format_number
  assert [fmt(x) for x in [24, 24.0, -1.5, 0.1, 1e-5, 2.5e20, 2**60]] == [
      "24", "24", "-1.5", "0.1", "1e-05", "2.5e20", "1.152921504606847e18"]
  for x in [0.1, 1e-5, 2.5e20, -3.75, 2**60, 123456789.125]:
    assert float(fmt(x)) == float(x)
  assert attributes_lib.bucket_keys("age_hours", AGE_BOUNDS) == [
      "age_hours@[,1)", "age_hours@[1,6)", "age_hours@[6,24)", "age_hours@[24,72)",
      "age_hours@[72,168)", "age_hours@[168,720)", "age_hours@[720,)"]
  assert attributes_lib.bucket_keys("x", []) == ["x@[,)"]
  with pytest.raises(ValueError, match="strictly increasing"):
    attributes_lib.bucket_keys("x", [1, 1])
  with pytest.raises(ValueError, match="finite"):
    attributes_lib.bucket_keys("x", [1, float("inf")])


def test_from_columns_numeric_keys():
  schema = AttributeSchema.from_columns(
      {"lang": np.array(["en", "de", "en"]), "topic": np.array(["ai|ml", "", "db"])},
      {"age_hours": (np.array([0.5, 30, 1000]), AGE_BOUNDS),
       "score": ([0.0, 1.0, 2.0], [-0.5, 0.25])})
  assert schema.keys == (
      ["__live__"] + attributes_lib.bucket_keys("age_hours", AGE_BOUNDS)
      + ["lang=de", "lang=en", "score@[,-0.5)", "score@[-0.5,0.25)", "score@[0.25,)",
         "topic=ai", "topic=db", "topic=ml"])
  assert schema.attributes == ["age_hours", "lang", "score", "topic"]
  assert schema.categorical_attributes == ["lang", "topic"]
  assert schema.numeric_attributes == {"age_hours": tuple(map(float, AGE_BOUNDS)),
                                       "score": (-0.5, 0.25)}
  assert schema.num_words == 1
  # The keys round-trip through the constructor.
  assert AttributeSchema(schema.keys).numeric_attributes == schema.numeric_attributes


def test_from_columns_separator_by_keyword_only():
  cols = {"lang": np.array(["en", "fr"]), "topic": np.array(["ai;ml", "ml"])}
  schema = AttributeSchema.from_columns(cols, separator=";")
  assert schema.keys == ["__live__", "lang=en", "lang=fr", "topic=ai", "topic=ml"]
  assert AttributeSchema.from_columns({"lang": ["en"]}).keys == ["__live__", "lang=en"]
  # The old positional form (columns, separator) was a shim: now a clear error.
  with pytest.raises(TypeError, match="separator by keyword"):
    AttributeSchema.from_columns(cols, ";")


def test_public_values_and_buckets():
  schema = AttributeSchema.from_columns(
      {"lang": np.array(["fr", "en"])}, {"age": (np.array([3.0]), [1, 10])})
  assert schema.values("lang") == ["en", "fr"]
  bounds, bits = schema.buckets("age")
  np.testing.assert_array_equal(bounds, [1.0, 10.0])
  assert [schema.keys[b] for b in bits] == ["age@[,1)", "age@[1,10)", "age@[10,)"]
  assert schema.value_bits() == {("lang", "en"): 4, ("lang", "fr"): 5}
  with pytest.raises(ValueError, match="not a categorical attribute"):
    schema.values("age")
  with pytest.raises(ValueError, match="not a numeric attribute"):
    schema.buckets("lang")


def test_encode_categorical_and_numeric():
  cat = {"lang": np.array(["en", "de", "en", "de"]),
         "topic": np.array(["ai|ml", "", "ml", "ai"])}
  ages = np.array([0.0, 1.0, 23.999, 720.0])
  schema = AttributeSchema.from_columns(cat, {"age_hours": (ages, AGE_BOUNDS)})
  key = schema.keys.index
  bits = schema.encode({**cat, "age_hours": ages})
  assert bits.dtype == np.int32 and bits.shape == (4, 1)
  assert bit_list(bits, len(schema.keys)) == [
      sorted([0, key("age_hours@[,1)"), key("lang=en"), key("topic=ai"), key("topic=ml")]),
      sorted([0, key("age_hours@[1,6)"), key("lang=de")]),   # boundary -> upper bucket
      sorted([0, key("age_hours@[6,24)"), key("lang=en"), key("topic=ml")]),
      sorted([0, key("age_hours@[720,)"), key("lang=de"), key("topic=ai")]),
  ]
  # The (values, boundaries) pairs of from_columns are accepted as well.
  again = schema.encode({**cat, "age_hours": (ages, AGE_BOUNDS)})
  np.testing.assert_array_equal(again, bits)
  with pytest.raises(ValueError, match="differ from the schema"):
    schema.encode({**cat, "age_hours": (ages, [1, 2])})


def test_encode_every_bucket_against_comparisons():
  rng = np.random.default_rng(0)
  values = np.concatenate([AGE_BOUNDS, rng.uniform(-10, 1000, 200), [-1e9, 1e12]])
  schema = AttributeSchema.from_columns({}, {"age_hours": (values, AGE_BOUNDS)})
  bits = schema.encode({"age_hours": values})
  rows = bit_list(bits, len(schema.keys))
  assert all(len(r) == 2 and r[0] == 0 for r in rows)  # live + exactly one bucket
  for value, row in zip(values, rows):
    lo, _, hi = schema.keys[row[1]].partition("@[")[2].rstrip(")").partition(",")
    assert (not lo or float(lo) <= value) and (not hi or value < float(hi)), (value, row)


def test_encode_errors():
  schema = AttributeSchema.from_columns({"lang": ["en"]}, {"age": ([1.0], [10])})
  with pytest.raises(ValueError, match=r"attribute 'age': NaN value at row 2"):
    schema.encode({"lang": ["en"] * 3, "age": np.array([1.0, 2.0, np.nan])})
  with pytest.raises(ValueError, match="attribute 'age': numeric values expected"):
    schema.encode({"lang": ["en"], "age": ["old"]})
  with pytest.raises(ValueError, match=r"missing attribute column\(s\) \['age'\]"):
    schema.encode({"lang": ["en"]})
  with pytest.raises(ValueError, match="differ in length"):
    schema.encode({"lang": ["en", "en"], "age": [1.0]})
  with pytest.raises(ValueError, match=r"attribute 'lang': unknown value 'fr' \(row 0\)"):
    schema.encode({"lang": ["fr"], "age": [1.0]})
  with pytest.raises(ValueError, match="attribute 'age': NaN value at row 1"):
    AttributeSchema.from_columns({}, {"age": ([1.0, float("nan")], [10])})


@pytest.mark.parametrize("categorical,numeric,fragment", [
    ({"a=b": ["x"]}, {}, "invalid attribute name"),
    ({"__x": ["x"]}, {}, "invalid attribute name"),
    ({"or": ["x"]}, {}, "filter keyword"),
    ({"two words": ["x"]}, {}, "invalid attribute name"),
    ({}, {"a@b": ([1.0], [2])}, "invalid attribute name"),
    ({"a": ["x"]}, {"a": ([1.0], [2])}, "both categorical and numeric"),
    ({}, {"a": ([1.0], [2, 1])}, "strictly increasing"),
])
def test_from_columns_rejects(categorical, numeric, fragment):
  with pytest.raises(ValueError, match=fragment):
    AttributeSchema.from_columns(categorical, numeric)


def test_any_value_text_loads_and_filters():
  # Quotes, backslashes, commas, '=' and unicode are values like any other
  # (MovieLens's "Children's"); filters quote and escape them.
  genres = ["Children's|Comedy", 'say "hi"', "back\\slash,comma", "Zürich=東京", ""]
  schema = AttributeSchema.from_columns({"genre": genres})
  bits = schema.encode({"genre": genres})
  assert schema.values("genre") == sorted(["Children's", "Comedy", 'say "hi"',
                                           "back\\slash,comma", "Zürich=東京"])
  filters = ['genre = "Children\'s"', "genre = 'Children\\'s'", 'genre = "say \\"hi\\""',
             'genre IN ("back\\\\slash,comma", "Zürich=東京")', "genre NOT IN (Comedy)"]
  program = attributes_lib.compile_filters(tf.constant(filters), tf.constant(schema.keys))
  mask, count = ops.filter_mask(bits, program)
  rows = [[i for i in range(5) if (int(mask[b, 0]) >> i) & 1] for b in range(len(filters))]
  assert rows == [[0], [0], [1], [2, 3], [1, 2, 3, 4]]


@pytest.mark.parametrize("keys,fragment", [
    (["lang=en"], "bit 0 must be"),
    (["__live__", "lang=en", "lang=en"], "unique"),
    (["__live__", "nokey"], "bad attribute bit key"),
    (["__live__", "a@[1,2"], "bad numeric bucket key"),
    (["__live__", "a@[,1)", "a@[2,)"], "must tile"),
    (["__live__", "a@[,1)", "a@[1,)", "a=x"], "both categorical and numeric"),
])
def test_constructor_rejects(keys, fragment):
  with pytest.raises(ValueError, match=fragment):
    AttributeSchema(keys)


def run_program(program, item_bits):
  """Minimal numpy evaluator of filter_program.h programs [L, 2 + W]."""
  stack = []
  for op, _, *mask in program:
    mask = np.array(mask, np.int32)
    if op == filter_ops.OP_ANY:
      stack.append(((item_bits & mask) != 0).any(axis=1))
    elif op == filter_ops.OP_ALL:
      stack.append(((mask & ~item_bits) == 0).all(axis=1))
    elif op == filter_ops.OP_TRUE:
      stack.append(np.ones(len(item_bits), bool))
    elif op == filter_ops.OP_FALSE:
      stack.append(np.zeros(len(item_bits), bool))
    elif op == filter_ops.OP_NOT:
      stack.append(~stack.pop())
    elif op in (filter_ops.OP_AND, filter_ops.OP_OR):
      b, a = stack.pop(), stack.pop()
      stack.append(a & b if op == filter_ops.OP_AND else a | b)
  assert len(stack) == 1
  return stack[0]


def test_compile_filters_appends_live_check():
  cat = {"lang": np.array(["en", "de", "en"])}
  ages = np.array([2.0, 30.0, 500.0])
  schema = AttributeSchema.from_columns(cat, {"age_hours": (ages, AGE_BOUNDS)})
  bits = schema.encode({**cat, "age_hours": ages})
  bits[2, 0] &= ~np.int32(1)  # item 2 deleted: __live__ cleared
  program = attributes_lib.compile_filters(
      tf.constant(["", "lang = en", "age_hours >= 24 OR lang = xx"]), schema.keys,
      unknown_value="match_none").numpy()
  assert program.shape[0] == 3 and program.shape[2] == 3
  for b in range(3):
    np.testing.assert_array_equal(program[b, -2], [filter_ops.OP_ANY, 0, 1])
    np.testing.assert_array_equal(program[b, -1], [filter_ops.OP_AND, 0, 0])
  np.testing.assert_array_equal(run_program(program[0], bits), [True, True, False])
  np.testing.assert_array_equal(run_program(program[1], bits), [True, False, False])
  np.testing.assert_array_equal(run_program(program[2], bits), [False, True, False])


def test_compile_filters_in_graph_and_wide():
  keys = ["__live__"] + [f"v=x{i}" for i in range(40)]  # W = 2

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def compile_batch(filters):
    return attributes_lib.compile_filters(filters, tf.constant(keys))
  out = compile_batch.get_concrete_function().structured_outputs
  assert out.shape.as_list() == [None, None, 4]
  program = compile_batch(tf.constant(["v = x35", "v != x1 AND v = x2"])).numpy()
  assert program.shape == (2, 6, 4)
  np.testing.assert_array_equal(program[0, 1], [filter_ops.OP_NOP, 0, 0, 0])  # padding
  np.testing.assert_array_equal(program[0, -2:], [[filter_ops.OP_ANY, 0, 1, 0],
                                                  [filter_ops.OP_AND, 0, 0, 0]])
  program = compile_batch(tf.constant([], tf.string)).numpy()
  assert program.shape == (0, 3, 4)
