"""`TextRetrievalModel`: the dual encoder trained with `model.fit`.

    model = TextRetrievalModel(tower)                         # one shared tower
    model = TextRetrievalModel(member_tower, item_tower)      # separate towers
    model.compile(tf.keras.optimizers.Adam(1e-3))
    model.fit(tf.data.Dataset.from_tensor_slices({
        "member_text": members, "item_text": items,          # [N] strings
        "item_id": ids,                                      # masks duplicates
        "hard_negatives": negatives,                         # [N, H] strings (optional)
    }).batch(64))

Loss: `MatryoshkaLoss(InfoNCELoss(temperature), dims)` by default (`loss="bce"`
for the ablation; `matryoshka_dims=None` trains the full width only).
"""

from typing import Optional, Sequence

import tensorflow as tf

from linr_tf.text.losses import BCELoss, InfoNCELoss, MatryoshkaLoss


class TextRetrievalModel(tf.keras.Model):

  def __init__(self, member_tower, item_tower=None, loss: str = "infonce",
               temperature: float = 0.05,
               matryoshka_dims: Optional[Sequence[int]] = None, **kwargs):
    super().__init__(**kwargs)
    self.member_tower = member_tower
    self.item_tower = member_tower if item_tower is None else item_tower
    self.shared = item_tower is None or item_tower is member_tower
    if loss == "infonce":
      base = InfoNCELoss(temperature)
    elif loss == "bce":
      base = BCELoss(temperature)
    else:
      raise ValueError(f"loss must be 'infonce' or 'bce', got '{loss}'")
    self.loss_fn = MatryoshkaLoss(base, matryoshka_dims)
    self.loss_tracker = tf.keras.metrics.Mean(name="loss")

  def compute_text_loss(self, features, training=False):
    q = self.member_tower.encode(features["member_text"], training=training)
    p = self.item_tower.encode(features["item_text"], training=training)
    n = None
    hard = features.get("hard_negatives")
    if hard is not None and hard.shape[-1] != 0:
      flat = self.item_tower.encode(tf.reshape(hard, [-1]), training=training)
      n = tf.reshape(flat, [tf.shape(hard)[0], tf.shape(hard)[1], tf.shape(flat)[-1]])
    return self.loss_fn(q, p, n, features.get("item_id"))

  def train_step(self, features):
    with tf.GradientTape() as tape:
      loss = self.compute_text_loss(features, training=True)
    variables = self.trainable_variables
    self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    self.loss_tracker.update_state(loss)
    return {"loss": self.loss_tracker.result()}

  def test_step(self, features):
    self.loss_tracker.update_state(self.compute_text_loss(features))
    return {"loss": self.loss_tracker.result()}

  @property
  def metrics(self):
    return [self.loss_tracker]

  def call(self, texts, training=False):
    return self.member_tower(texts, training=training)
