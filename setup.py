from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def requirements():
    lines = (HERE / "requirements_advanced.txt").read_text().splitlines()
    reqs = [ln.split("#")[0].strip() for ln in lines]
    return [r for r in reqs if r and not r.startswith("pytest")]


setup(
    name="advanced_anomaly_detection",
    version="0.1.0",
    description="Nightly PySpark jobs: funnel anomaly detection and contact-compliance (TCPA) risk",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["advanced_anomaly_detection", "advanced_anomaly_detection.*"]),
    include_package_data=True,
    install_requires=requirements(),
    entry_points={"console_scripts": ["aad=advanced_anomaly_detection.cli:main"]},
)
