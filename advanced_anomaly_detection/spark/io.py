"""Filesystem access through Hadoop's FileSystem, so local paths and gs:// behave the same."""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession


def _fs_path(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hpath


def path_exists(spark: SparkSession, path: str) -> bool:
    fs, hpath = _fs_path(spark, path)
    return bool(fs.exists(hpath))


def write_text(spark: SparkSession, path: str, text: str) -> None:
    fs, hpath = _fs_path(spark, path)
    stream = fs.create(hpath, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def read_text(spark: SparkSession, path: str) -> str:
    fs, hpath = _fs_path(spark, path)
    stream = fs.open(hpath)
    try:
        reader = spark.sparkContext._jvm.java.io.BufferedReader(
            spark.sparkContext._jvm.java.io.InputStreamReader(stream, "UTF-8")
        )
        lines = []
        line = reader.readLine()
        while line is not None:
            lines.append(line)
            line = reader.readLine()
        return "\n".join(lines)
    finally:
        stream.close()


def read_bytes(spark: SparkSession, path: str) -> bytes:
    fs, hpath = _fs_path(spark, path)
    stream = fs.open(hpath)
    try:
        return bytes(spark.sparkContext._jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
    finally:
        stream.close()


def write_partitioned(df: DataFrame, path: str, partition_col: str) -> None:
    """Parquet, dynamic partition overwrite: replaces only the partitions present in `df` (reruns
    replace, never duplicate)."""
    (
        df.write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy(partition_col)
        .parquet(path)
    )


def list_dir(spark: SparkSession, path: str) -> list:
    """Names of the entries of directory `path` ([] when it does not exist)."""
    fs, hpath = _fs_path(spark, path)
    if not fs.exists(hpath):
        return []
    return [status.getPath().getName() for status in fs.listStatus(hpath)]


def delete_path(spark: SparkSession, path: str) -> None:
    fs, hpath = _fs_path(spark, path)
    fs.delete(hpath, True)
