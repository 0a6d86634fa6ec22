"""The Spark part of the package: the only modules that import pyspark."""
