"""Retrieval and ranking in one model (issue 16).

    from linr_tf.ranking import RankingConfig, Ranker, JointModel
    model = JointModel(cfg, vocabularies, bit_keys)      # cfg.ranking set
    model.fit(train)                                     # retrieval + ranking losses
    export(model, "out/export")                          # + retrieve_and_rank signature

`config` (the `ranking` config section), `ranker` (DCN-v2 `Ranker`),
`rank` (retrieve, gather stored candidate features, rank the valid ones),
`model` (`JointModel`: separate / joint / cascade training), `serving`
(the `retrieve_and_rank` and `update_rank_features` signatures).
"""

from linr_tf.ranking.config import MODES, RankingConfig

_LAZY = {"Ranker": "linr_tf.ranking.ranker", "RankingHead": "linr_tf.ranking.model",
         "JointModel": "linr_tf.ranking.model", "retrieve_and_rank": "linr_tf.ranking.rank"}


def __getattr__(name):  # TensorFlow is imported only when a layer is asked for
  if name in _LAZY:
    import importlib  # pylint: disable=g-import-not-at-top
    return getattr(importlib.import_module(_LAZY[name]), name)
  raise AttributeError(name)
