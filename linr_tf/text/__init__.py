"""Text dual encoder (issue 17): prompts with quantized numbers, in-graph
tokenisation, a pretrained MiniLM/BERT or a from-scratch Transformer encoder,
pooling, InfoNCE / BCE / Matryoshka losses, and export into the item index.

    prompts = PromptConfig.from_dict(json.load(open("configs/text_movielens.json"))["prompts"])
    buckets = PercentileBuckets.fit({"popularity": pop, "rating": avg})
    tower = TextTower(TextTokenizer(vocab), BertEncoder(BertConfig.small(len(vocab))))
    model = TextRetrievalModel(tower)            # shared tower, InfoNCE, mean pooling
    model.compile(tf.keras.optimizers.Adam(1e-3)); model.fit(dataset)
"""

from linr_tf.text.prompts import (FieldSpec, ItemPrompt, PercentileBuckets,  # noqa: F401
                                  PromptConfig, build_item_prompts,
                                  build_member_prompt)
try:
  from linr_tf.text.tokenizer import TextTokenizer  # noqa: F401
except ImportError as e:  # tensorflow-text missing (e.g. a GPU machine): the rest works
  _missing = e

  def TextTokenizer(*args, **kwargs):  # noqa: N802
    raise ImportError(f"TextTokenizer needs tensorflow-text: {_missing}")
from linr_tf.text.bert import BertConfig, BertEncoder  # noqa: F401
from linr_tf.text.pooling import Pooling  # noqa: F401
from linr_tf.text.tower import TextTower  # noqa: F401
from linr_tf.text.losses import BCELoss, InfoNCELoss, MatryoshkaLoss  # noqa: F401
from linr_tf.text.model import TextRetrievalModel  # noqa: F401
