# advanced_anomaly_detection — everyday commands. Python 3.11 + Java 17 are the only prerequisites.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test evaluate evaluate-compliance bench bench-quick package config-defaults clean

$(STAMP): requirements_advanced.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements_advanced.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

COMPLIANCE_DEMO := data_out/demo_compliance
# Real CFPB complaint narratives join the synthetic ones when the shared sample is beside the checkout.
CFPB_SAMPLE := $(wildcard ../shared/data/cfpb_complaints_sample_1k.csv)

demo: install
	$(PY) -m advanced_anomaly_detection.cli demo --workdir data_out/demo
	$(PY) -m advanced_anomaly_detection.cli generate-compliance --out $(COMPLIANCE_DEMO) --customers 2000 \
		$(if $(CFPB_SAMPLE),--with-cfpb $(CFPB_SAMPLE))
	$(PY) -m advanced_anomaly_detection.cli score-compliance --journey $(COMPLIANCE_DEMO)/journey.csv \
		--complaints $(COMPLIANCE_DEMO)/complaints.csv --accounts $(COMPLIANCE_DEMO)/accounts.csv \
		--output $(COMPLIANCE_DEMO)/gold_compliance_risk

test: install
	$(PY) -m pytest -q tests

evaluate: install
	$(PY) -m advanced_anomaly_detection.cli evaluate --brands 200 --history-days 56 --scored-days 14 --seed 11 --json data_out/evaluation.json

evaluate-compliance: install
	$(PY) -m advanced_anomaly_detection.cli evaluate-compliance

bench: install
	$(PY) -m advanced_anomaly_detection.cli bench --out bench_out

bench-quick: install
	$(PY) -m advanced_anomaly_detection.cli bench --quick --out bench_out

# The package as a zip for `spark-submit --py-files` / `gcloud dataproc jobs submit pyspark --py-files`.
package: install
	mkdir -p dist
	$(PY) -c "import shutil; shutil.make_archive('dist/advanced_anomaly_detection', 'zip', '.', 'advanced_anomaly_detection')"
	@echo "dist/advanced_anomaly_detection.zip"

config-defaults: install
	$(PY) -m advanced_anomaly_detection.cli config --defaults > config/defaults.yaml

clean:
	rm -rf data_out bench_out spark-warehouse metastore_db derby.log .pytest_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
