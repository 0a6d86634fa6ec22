"""Train the global LSTM autoencoder on gold history and save a new model version.

    spark-submit jobs/train_models.py --gold PATH --model-dir PATH [--end YYYY-MM-DD] [--config FILE]

History up to --end (default: yesterday, UTC), lookback from config; the model lands in
<model-dir>/lstm/<version>/ with its metadata, and <model-dir>/lstm/LATEST points to it.
"""
import os
import sys

try:
    import advanced_anomaly_detection  # noqa: F401
except ImportError:  # run from a checkout (python jobs/... or spark-submit) without installing the package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from advanced_anomaly_detection.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
