"""`aad evaluate-labelled`: score-series on files labelled elsewhere (NAB windows, a label column)."""
import json

import numpy as np
import pandas as pd
import pytest

from advanced_anomaly_detection import cli
from advanced_anomaly_detection import labelled_evaluation as le
from advanced_anomaly_detection.config import load_config
from advanced_anomaly_detection.errors import UserError

CFG = load_config(overrides=["detectors.prophet.enabled=false"])  # Prophet is the slow part; not what is tested


def _hourly(days=24, spike_at=None, seed=0):
    ts = pd.date_range("2024-03-04", periods=days * 24, freq="h")
    rng = np.random.default_rng(seed)
    v = 100 * (1 + 0.4 * np.sin(2 * np.pi * ts.hour.to_numpy() / 24)) * np.exp(rng.normal(0, 0.04, len(ts)))
    if spike_at is not None:
        v[spike_at] *= 2.5
    return pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "value": v.round(4)})


@pytest.fixture
def nab(tmp_path):
    """NAB's layout: data/<category>/<file>.csv and a windows JSON listing one absent file too."""
    data = tmp_path / "data"
    (data / "realShop").mkdir(parents=True)
    frame = _hourly(spike_at=20 * 24 + 9)
    # NAB's timestamps are not always on the hour: ":00:01" as in its ad-exchange files
    frame["timestamp"] = frame["timestamp"].str.replace(r":00$", ":01", regex=True)
    frame.to_csv(data / "realShop" / "sales.csv", index=False)
    windows = {
        "realShop/sales.csv": [["2024-03-24 03:00:01.000000", "2024-03-24 15:00:01.000000"],   # the spike
                               ["2024-03-04 10:00:01.000000", "2024-03-04 20:00:01.000000"]],  # in the warm-up
        "realShop/absent.csv": [],
    }
    labels = tmp_path / "combined_windows.json"
    labels.write_text(json.dumps(windows))
    return data, labels


def test_nab_windows_found_warmup_left_out_absent_listed(nab):
    data, labels = nab
    files, absent = le.nab_files(data, labels)
    assert [f.name for f in files] == ["realShop/sales.csv"] and absent == ["realShop/absent.csv"]
    result = le.run(files, CFG)
    ours = result["methods"][le.OURS]
    assert result["labelled_windows"] == 1 and result["windows_in_warmup"] == 1
    assert ours["recall"] == 1.0, result
    assert ours["false_events"] <= 1, result
    per = result["per_file"]["realShop/sales.csv"]
    assert (per["frequency"], per["windows_found"]) == ("1h", 1)
    assert "realShop/sales.csv" in le.table(result)


def test_label_column_runs_become_windows(tmp_path):
    """Yahoo S5's layout: positions 1..n and an is_anomaly column; a run of labelled points is one window."""
    n = 1200
    rng = np.random.default_rng(3)
    k = np.arange(1, n + 1)
    v = 50 + 10 * np.sin(2 * np.pi * k / 40) + rng.normal(0, 1, n)
    label = np.zeros(n, int)
    v[900:903] += 25
    label[900:903] = 1
    pd.DataFrame({"timestamp": k, "value": v.round(3), "is_anomaly": label}).to_csv(tmp_path / "real_1.csv", index=False)
    result = le.run(le.column_files(tmp_path), CFG, label_col="is_anomaly")
    assert result["labelled_windows"] == 1
    assert result["methods"][le.OURS]["recall"] == 1.0, result


def test_window_runs_from_a_label_column():
    t = pd.Series(pd.date_range("2024-01-01", periods=8, freq="h"))
    runs = le._windows_from_column(t, np.array([0, 1, 1, 0, 0, 1, 0, 1], bool))
    assert runs == [(t[1], t[2]), (t[5], t[5]), (t[7], t[7])]


@pytest.mark.parametrize("content, message", [
    ("not json", "cannot read it as NAB windows JSON"),
    ('["a", "b"]', "expected an object of file -> [[start, end], ...]"),
    ('{"x.csv": [["2024-01-01"]]}', "each window must be [start, end]"),
])
def test_bad_labels_file(tmp_path, content, message):
    labels = tmp_path / "w.json"
    labels.write_text(content)
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        le.nab_files(tmp_path, labels)


def test_missing_columns_and_bad_labels_are_clear(tmp_path):
    pd.DataFrame({"ts": ["2024-01-01"], "value": [1]}).to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(UserError, match=r"a\.csv: no column \['timestamp'\]"):
        le.score_file(le.column_files(tmp_path)[0], CFG, "timestamp", "value", None)
    frame = _hourly(days=3)
    frame["is_anomaly"] = "maybe"
    frame.to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(UserError, match="label column holds values other than 0/1"):
        le.score_file(le.column_files(tmp_path)[0], CFG, "timestamp", "value", "is_anomaly")


def test_cli(nab, tmp_path, capsys):
    data, labels = nab
    out = tmp_path / "m.json"
    assert cli.main(["evaluate-labelled", "--data", str(data), "--labels", str(labels), "--json", str(out),
                     "--jobs", "1", "--set", "detectors.prophet.enabled=false"]) == 0
    printed = capsys.readouterr().out
    assert "1 labelled files absent" in printed and "score-series ensemble" in printed
    assert json.loads(out.read_text())["files"] == 1
    assert cli.main(["evaluate-labelled", "--data", str(tmp_path / "nowhere"), "--labels", str(labels)]) != 0
    assert "not a folder" in capsys.readouterr().err
