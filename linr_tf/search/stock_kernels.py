"""The searcher primitives from stock TensorFlow ops only (portable export).

    kernels = StockKernels()
    passing = kernels.pass_mask(filters, bit_keys, attributes)   # mask: bool [B, N]
    found = kernels.dot_top_k(queries, vectors, passing, k)

Same contract and results as `CustomOpKernels`, for SavedModels that an
unmodified TensorFlow Serving loads: the filter is parsed in the graph with
stock string ops (`regex_replace` tokenizer, the grammar checked by
`regex_full_match` over one letter per token) and evaluated against the
attribute bitsets with `tf.bitwise`; scoring writes the [B, N] score matrix
(`matmul`, or popcounts of XOR-ed codes) and selects with `tf.math.top_k`,
which is stable, so ties go to the smaller item index as in the ops.

Filter language here: `attr = value`, `attr IN (v1, v2, ...)`, joined by
`AND` (keywords in any case; values quoted with " or ' or bare). Anything else
(OR, NOT, !=, ranges, ALL), an unknown attribute or an unknown value is an
InvalidArgumentError.
"""

import tensorflow as tf

from linr_tf import attributes as attributes_lib
from linr_tf.ops.mask_ops import FilterMask
from linr_tf.ops.topk_ops import MaskedTopK
from linr_tf.quantization import rabitq

_WS = r"\t\n\v\f\r "
# One token per match: a quoted string, a bare word, punctuation, or any other
# single character (which then fails the grammar). `\x1f` starts each token.
_TOKEN = (r"(?s)[" + _WS + r"]*("
          r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[A-Za-z0-9_.\-]+|"
          r"[^" + _WS + r"])[" + _WS + r"]*")
_SEP = "\x1f"
_CLAUSE = r"W(?:E[WQ]|IL[WQ](?:C[WQ])*R)"
_GRAMMAR = rf"(?:{_CLAUSE}(?:A{_CLAUSE})*)?"


def _token_classes(tokens):
  """One letter per token: W word, Q quoted, A and, I in, E =, L (, R ), C ,."""
  lower = tf.strings.lower(tokens)
  cls = tf.fill(tf.shape(tokens), "X")
  rules = [
      (tf.strings.regex_full_match(tokens, r"[A-Za-z0-9_.\-]+"), "W"),
      (tf.strings.regex_full_match(tokens, r"(?s)\".*\"|'.*'"), "Q"),
      (tf.equal(tokens, "="), "E"), (tf.equal(tokens, "("), "L"),
      (tf.equal(tokens, ")"), "R"), (tf.equal(tokens, ","), "C"),
      (tf.equal(lower, "and"), "A"), (tf.equal(lower, "in"), "I"),
      (tf.logical_or(tf.logical_or(tf.equal(lower, "or"),
                                   tf.equal(lower, "not")),
                     tf.equal(lower, "all")), "K"),
      (tf.equal(tokens, ""), ""),
  ]
  for cond, letter in rules:  # later rules win (keywords over words)
    cls = tf.where(cond, letter, cls)
  return cls


def reject_column_predicates(filters, columns):
  """`filters`, after an in-graph check that none compares a column attribute
  (the portable export evaluates bitsets only); the error names the predicate."""
  names = tf.strings.regex_replace(
      tf.concat([tf.convert_to_tensor(columns.number_columns, tf.string),
                 tf.convert_to_tensor(columns.value_columns, tf.string),
                 tf.constant(["item_id:"])], 0), ":[^:]*$", "")
  alternatives = tf.strings.reduce_join(
      tf.strings.regex_replace(names, r"([.\-])", r"\\\1"), separator="|")
  # RE2 takes the pattern as a tensor: one predicate of a column attribute.
  predicate = tf.strings.join([
      r"(?is)(?:^|.*[\t\n\v\f\r (])((?:", alternatives,
      r")[\t\n\v\f\r ]*(?:=|!=|<|>|in\b|not\b|all\b|between\b).*)"])
  bad = tf.strings.regex_full_match(filters, predicate)
  check = tf.debugging.Assert(
      tf.logical_not(tf.reduce_any(bad)),
      ["the portable export evaluates attribute bitsets only; exact numbers, value ids and "
       "item_id sets need the fast export (LinrFilterMaskColumns). Predicate (and what follows):",
       tf.strings.regex_replace(tf.boolean_mask(filters, bad), predicate, r"\1")], summarize=3)
  with tf.control_dependencies([check]):
    return tf.identity(filters)


def compile_filters_portable(filters, bit_keys, num_words):
  """Filter strings [B] -> (clause bit words [B, C, W] int32, active [B, C]).

  An item passes clause c when it holds any bit of clause_words[b, c]; it
  passes the filter when it passes every active clause.
  """
  filters = tf.convert_to_tensor(filters, tf.string)
  stripped = tf.strings.strip(filters)
  no_sep = tf.logical_not(tf.strings.regex_full_match(stripped, r"(?s).*\x1f.*"))
  marked = tf.strings.regex_replace(stripped, _TOKEN, _SEP + r"\1")
  pieces = tf.strings.split(marked, sep=_SEP)                     # ragged
  tokens = pieces[:, 1:].to_tensor(default_value="")              # [B, T]
  cls = _token_classes(tokens)
  shape = tf.strings.reduce_join(cls, axis=1)                     # [B]
  syntax_ok = tf.logical_and(tf.strings.regex_full_match(shape, _GRAMMAR),
                             no_sep)
  check_syntax = tf.debugging.Assert(
      tf.reduce_all(syntax_ok),
      ["filter not supported by the portable export (only attr = value, "
       "attr IN (...), AND) or malformed:",
       tf.boolean_mask(filters, tf.logical_not(syntax_ok))], summarize=3)

  with tf.control_dependencies([check_syntax]):
    batch = tf.shape(tokens)[0]
    prev = tf.concat([tf.fill([batch, 1], "^"), cls[:, :-1]], axis=1)
    is_attr = tf.logical_and(
        tf.equal(cls, "W"),
        tf.logical_or(tf.equal(prev, "^"), tf.equal(prev, "A")))
    is_value = tf.logical_and(
        tf.logical_or(tf.equal(cls, "W"), tf.equal(cls, "Q")),
        tf.logical_or(tf.logical_or(tf.equal(prev, "E"), tf.equal(prev, "L")),
                      tf.equal(prev, "C")))
    clause_id = tf.cumsum(tf.cast(tf.equal(cls, "A"), tf.int32), axis=1)

  # Attribute of every token's clause: flat list of attribute tokens, indexed
  # by (attributes before this row) + clause id.
  attrs_flat = tf.boolean_mask(tokens, is_attr)
  n_attrs = tf.reduce_sum(tf.cast(is_attr, tf.int32), axis=1)      # [B]
  offset = tf.cumsum(n_attrs, exclusive=True)
  known_attrs = tf.strings.regex_replace(bit_keys, r"[=@].*", "")
  attr_known = tf.reduce_any(
      tf.equal(attrs_flat[:, None], known_attrs[None, :]), axis=1)
  check_attr = tf.debugging.Assert(
      tf.reduce_all(attr_known),
      ["unknown attribute in filter:",
       tf.boolean_mask(attrs_flat, tf.logical_not(attr_known))], summarize=3)

  value_pos = tf.where(is_value)                                  # [V, 2]
  rows = tf.cast(value_pos[:, 0], tf.int32)
  clauses = tf.gather_nd(clause_id, value_pos)
  raw = tf.gather_nd(tokens, value_pos)
  quoted = tf.strings.regex_full_match(raw, r"(?s)[\"'].*")
  length = tf.maximum(tf.strings.length(raw) - 2, 0)
  inner = tf.strings.substr(raw, tf.ones_like(length), length)
  inner = tf.strings.regex_replace(inner, r"(?s)\\(.)", r"\1")
  values = tf.where(quoted, inner, raw)
  value_attr = tf.gather(attrs_flat, tf.gather(offset, rows) + clauses)
  keys = tf.strings.join([value_attr, "=", values])
  matches = tf.equal(keys[:, None], bit_keys[None, :])            # [V, nbits]
  found = tf.reduce_any(matches, axis=1)
  with tf.control_dependencies([check_attr]):
    check_value = tf.debugging.Assert(
        tf.reduce_all(found),
        ["unknown value in filter (attr=value):",
         tf.boolean_mask(keys, tf.logical_not(found))], summarize=3)
  with tf.control_dependencies([check_value]):
    bits = tf.argmax(tf.cast(matches, tf.int32), axis=1, output_type=tf.int32)

  n_clauses = tf.where(tf.strings.length(shape) > 0,
                       tf.reduce_max(tf.concat(
                           [tf.zeros([batch, 1], tf.int32), clause_id], 1),
                           axis=1) + 1, 0)
  max_clauses = tf.reduce_max(tf.concat([n_clauses, [0]], 0))
  nbits = num_words * 32
  hits = tf.scatter_nd(tf.stack([rows, clauses, bits], axis=1),
                       tf.ones_like(bits),
                       tf.stack([batch, max_clauses, nbits]))     # [B, C, 32W]
  hits = tf.reshape(tf.cast(hits > 0, tf.int64),
                    tf.stack([batch, max_clauses, num_words, 32]))
  powers = tf.bitwise.left_shift(tf.ones([32], tf.int64),
                                 tf.range(32, dtype=tf.int64))
  words = tf.reduce_sum(hits * powers, axis=-1)                   # [B, C, W]
  words = tf.bitcast(tf.cast(words, tf.uint32), tf.int32)
  active = tf.range(max_clauses)[None, :] < n_clauses[:, None]
  return words, active


def pass_mask(attributes, words, active):
  """[B, N] bool: live items passing every active clause of each query."""
  live = attributes_lib.is_live(attributes)                              # [N]

  def one(args):
    w, a = args                                         # [C, W], [C]
    hit = tf.reduce_any(tf.not_equal(
        tf.bitwise.bitwise_and(attributes[None, :, :], w[:, None, :]), 0),
        axis=2)                                         # [C, N]
    ok = tf.reduce_all(tf.logical_or(hit, tf.logical_not(a)[:, None]), axis=0)
    return tf.logical_and(ok, live)

  return tf.map_fn(one, (words, active),
                   fn_output_signature=tf.TensorSpec([None], tf.bool))


def _top_k_passing(scores, passing, k) -> MaskedTopK:
  """Top-k of [B, N] `scores` among `passing` [B, N]: the ops' conventions
  (NaN as -inf, ties by smaller index, padding -inf / -1, count)."""
  neg_inf = tf.constant(float("-inf"), tf.float32)
  scores = tf.where(passing & ~tf.math.is_nan(scores), scores, neg_inf)
  k = tf.convert_to_tensor(k, tf.int32)
  kk = tf.minimum(k, tf.shape(scores)[1])
  top = tf.math.top_k(scores, kk, sorted=True)
  count = tf.minimum(tf.reduce_sum(tf.cast(passing, tf.int32), axis=1), k)
  valid = tf.range(kk)[None, :] < count[:, None]
  indices = tf.where(valid, top.indices, -1)
  values = tf.where(valid, top.values, neg_inf)
  pad = tf.stack([[0, 0], [0, k - kk]])
  return MaskedTopK(tf.pad(values, pad, constant_values=float("-inf")),
                    tf.pad(indices, pad, constant_values=-1), count)


class StockKernels:
  """Filter, score and select with stock TF ops (no op library needed)."""

  name = "stock_ops"
  # Writes need the atomic LinrWriteRows: a portable model is search-only.
  supports_updates = False

  def read(self, layout, variables, only=()):
    """Plain variable reads (a portable model is never written while served)."""
    names = [n for n in layout.names if not only or n in only]
    return layout.from_storage(
        type(variables)(**{n: getattr(variables, n).read_value() for n in names}))

  def pass_mask(self, filters, bit_keys, attributes, columns=None) -> FilterMask:
    """`columns` (exact numbers, value ids, item ids) are not evaluated here:
    a filter naming one is an InvalidArgumentError naming the predicate."""
    num_words = attributes.shape[1]
    if num_words is None:
      raise ValueError("StockKernels.pass_mask needs a static bitset width")
    if columns is not None:
      filters = reject_column_predicates(filters, columns)
    words, active = compile_filters_portable(filters, bit_keys, int(num_words))
    passing = pass_mask(attributes, words, active)                     # [B, N]
    return FilterMask(passing, tf.reduce_sum(tf.cast(passing, tf.int32), axis=1))

  def dot_top_k(self, queries, vectors, passing: FilterMask, k,
                strategy: str = "auto") -> MaskedTopK:
    del strategy  # one path: every strategy gives the same top-k
    queries = tf.convert_to_tensor(queries, tf.float32)
    scores = tf.matmul(queries, tf.cast(vectors, tf.float32), transpose_b=True)
    return _top_k_passing(scores, passing.mask, k)

  def mol_top_k(self, queries, items, gate_bias, gate_weight, passing: FilterMask, k,
                softmax: bool = True) -> MaskedTopK:
    """Mixture-of-Logits scores of every item ([B, N, P*Q] dot products in
    stock ops: the portable path materialises what the op does not)."""
    from linr_tf.ops.mol_ops import mol_score_matrix  # noqa: PLC0415  (issue 15)
    scores = mol_score_matrix(queries, items, gate_bias, gate_weight, softmax)
    return _top_k_passing(scores, passing.mask, k)

  def hamming_top_k(self, query_codes, codes, passing: FilterMask, k) -> MaskedTopK:
    num_words = codes.shape[1]
    if num_words is None:
      raise ValueError("StockKernels.hamming_top_k needs a static code width")
    xor = tf.bitwise.bitwise_xor(query_codes[:, None, :], codes[None, :, :])  # [B, N, W]
    differ = tf.raw_ops.PopulationCount(x=xor)
    matches = 32 * int(num_words) - tf.reduce_sum(tf.cast(differ, tf.int32), axis=2)
    return _top_k_passing(tf.cast(matches, tf.float32), passing.mask, k)

  def asymmetric_hamming_top_k(self, query_planes, query_scales, codes, factors,
                               passing: FilterMask, k) -> MaskedTopK:
    """The same estimate as the op, densely: unpacked signs [N, m] times the
    dequantized queries (float32 matmul: equal to the op's scores up to
    rounding, so near-ties may order differently)."""
    num_words = codes.shape[1]
    if num_words is None:
      raise ValueError("StockKernels.asymmetric_hamming_top_k needs a static code width")
    num_bits = 32 * int(num_words)
    y = rabitq.dequantize_query(query_planes, query_scales, num_bits)          # [B, m]
    signs = 2.0 * tf.cast(rabitq.unpack_bits(codes, num_bits), tf.float32) - 1.0
    scores = tf.matmul(y, signs, transpose_b=True) * tf.convert_to_tensor(factors)[None, :]
    return _top_k_passing(scores, passing.mask, k)
