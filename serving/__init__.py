"""TF Serving's REST and gRPC APIs over LiNR SavedModels (see server.py)."""

import os

# The LiNR SavedModels hold Keras 2 (tf_keras) objects; set before TF loads.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
