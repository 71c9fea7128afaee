"""Training and restore: a config and a feed folder in, a checkpoint out.

    from linr_tf import config, data, training
    cfg = config.load("configs/demo.json")
    data.generate_feed("out/data", num_users=300, num_items=800)
    model, metrics, history = training.train(cfg, "out/data", "out/run",
                                             epochs=1)
    print(training.recall_summary(metrics))      # recall@10=..., recall@50=...
    model = training.restore("out/run")          # model.json + ckpt

`workdir` holds `model.json` (what `RetrievalModel.from_metadata` needs),
the checkpoint `ckpt*` and the TensorBoard logs `logs/`.
"""

import json
import os
from typing import Optional, Tuple

import linr_tf  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from linr_tf import config as config_lib
from linr_tf import data as data_lib
from linr_tf import export as export_lib
from linr_tf import model as model_lib


def model_class(cfg: config_lib.Config):
  """`RetrievalModel`, or `MoLRetrievalModel` for a config with a `mol` section."""
  if cfg.mol is None:
    return model_lib.RetrievalModel
  from linr_tf.mol import model as mol_model  # pylint: disable=g-import-not-at-top
  return mol_model.MoLRetrievalModel


def load_data(cfg: config_lib.Config, data_dir: str
              ) -> Tuple[data_lib.Catalog, data_lib.Interactions]:
  """(catalog, interactions) from `<data_dir>/items.csv`, `interactions.csv`."""
  catalog = data_lib.read_items(os.path.join(data_dir, "items.csv"), cfg)
  log = data_lib.read_interactions(
      os.path.join(data_dir, "interactions.csv"), cfg, catalog)
  return catalog, log


def train(cfg: config_lib.Config, data_dir: str, workdir: str,
          epochs: Optional[int] = None, verbose: int = 2):
  """Trains, builds the index, saves a checkpoint to `workdir`.

  Args:
    cfg: model and training config.
    data_dir: folder with items.csv and interactions.csv.
    workdir: output folder (model.json, ckpt, TensorBoard logs/).
    epochs: overrides `cfg.train.epochs` when given.
    verbose: Keras fit verbosity (0 silent, 1 progress bar, 2 one line/epoch).

  Returns:
    (model, held-out metrics dict, Keras History).
  """
  catalog, log = load_data(cfg, data_dir)
  model = model_class(cfg).from_data(cfg, catalog, log)
  model.compile(optimizer=tf.keras.optimizers.Adagrad(cfg.train.learning_rate))
  train_ds, test_ds = model_lib.make_datasets(cfg, catalog, log)
  tf.keras.utils.set_random_seed(cfg.train.seed)
  callbacks = [model_lib.RefreshIndex(model, catalog),
               tf.keras.callbacks.TensorBoard(os.path.join(workdir, "logs"))]
  if cfg.mol is not None:
    # Mixture-of-Logits: fit, k-means item clusters (a model step), fit on.
    history = model.fit_with_clusters(train_ds, catalog, epochs or cfg.train.epochs,
                                      seed=cfg.train.seed, validation_data=test_ds,
                                      callbacks=callbacks, verbose=verbose)
  else:
    history = model.fit(train_ds, validation_data=test_ds,
                        epochs=epochs or cfg.train.epochs, callbacks=callbacks,
                        verbose=verbose)
  model.build_index(catalog)
  metrics = model.evaluate(test_ds, return_dict=True, verbose=0)
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "model.json"), "w", encoding="utf-8") as f:
    f.write(model.metadata())
  tf.train.Checkpoint(model=model).write(os.path.join(workdir, "ckpt"))
  return model, metrics, history


def restore(workdir: str) -> model_lib.RetrievalModel:
  """The model `train` saved to `workdir` (FileNotFoundError if none)."""
  path = os.path.join(workdir, "model.json")
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"{path} not found: run `train` with --workdir={workdir}")
  with open(path, encoding="utf-8") as f:
    text = f.read()
  cfg = config_lib.from_dict(json.loads(text)["config"])
  model = model_class(cfg).from_metadata(text)
  tf.train.Checkpoint(model=model).read(
      os.path.join(workdir, "ckpt")).expect_partial()
  return model


def recall_summary(metrics) -> str:
  """'recall@10=0.123, recall@50=..., recall@100=...' from `train`'s metrics."""
  return ", ".join(
      f"recall@{k}={metrics[f'factorized_top_k/top_{k}_categorical_accuracy']:.3f}"
      for k in model_lib.TOP_KS)


def export_untrained(cfg: config_lib.Config, data_dir: str, base_path: str,
                     seed: int = 0, version: Optional[int] = None) -> str:
  """Exports randomly initialised towers + the index over `data_dir`'s items.

  For tests and benchmarks of what happens after training (serving,
  ingestion): no `fit`, so it takes seconds. Writes `<base_path>/<version>`
  (the next free version if None) and returns that directory.

      data.generate_feed("out/feed", num_users=100, num_items=1000)
      path = training.export_untrained(cfg, "out/feed", "out/export")
  """
  catalog, log = load_data(cfg, data_dir)
  tf.keras.utils.set_random_seed(seed)
  model = model_class(cfg).from_data(cfg, catalog, log)
  model.build_index(catalog)
  return export_lib.export(model, base_path, version)
