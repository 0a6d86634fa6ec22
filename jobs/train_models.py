"""Train the global LSTM autoencoder on gold history and save a new model version.

    spark-submit jobs/train_models.py --gold PATH --model-dir PATH [--end YYYY-MM-DD] [--config FILE]

History up to --end (default: yesterday, UTC), lookback from config; the model lands in
<model-dir>/lstm/<version>/ with its metadata, and <model-dir>/lstm/LATEST points to it.
"""
import sys

import _bootstrap  # noqa: F401  (puts the repo root on sys.path for spark-submit from a checkout)

from advanced_anomaly_detection.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
