#!/usr/bin/env python3
"""Checks kascope's Parquet files with engines nobody here wrote: DuckDB and Spark.

  check.py roundtrip CSV PARQUET...
      The Parquet files (globs allowed), read back by DuckDB in order, hold the rows of the
      CSV kascope wrote in the same run: the same columns in the same order, typed (times
      as timestamps, numbers as numbers, sets as lists; never text standing in for a
      number), the same rows cell by cell, and the same row count, sums and true-counts.
  check.py schema PARQUET LIKE_PARQUET
      DuckDB reads PARQUET (e.g. one without rows) with the same columns and types as
      LIKE_PARQUET.
  check.py servers ENGINE SHARDS SERVERS_CSV
      sql/servers.sql, run by ENGINE (duckdb or spark) over the connection shards (a glob),
      gives the rows of kascope's --servers-csv over the same captures read together: every
      column the query computes (a subset of the CSV's, in the CSV's order) equal.

Prints one summary line; on a difference prints the first ones and exits 1. Exits 3 when
ENGINE's Python package (or Java, for Spark) is missing.
"""

import csv
import datetime
import glob
import math
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def fail(lines):
    for line in lines[:20]:
        print(line)
    if len(lines) > 20:
        print(f"... and {len(lines) - 20} more")
    sys.exit(1)


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def as_csv_text(value, sql_type):
    """A value DuckDB read from Parquet, written as kascope writes it in CSV."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(as_csv_text(v, sql_type) for v in value)
    if isinstance(value, datetime.datetime):
        # epoch seconds with microseconds, as tshark's frame.time_epoch
        us = (value - EPOCH) // datetime.timedelta(microseconds=1)
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"
    return str(value)


def same_cell(value, sql_type, text):
    if sql_type == "DOUBLE" and value is not None:
        return text != "" and float(text) == value
    return as_csv_text(value, sql_type) == text


def duckdb_or_exit():
    try:
        import duckdb
    except ImportError:
        print("duckdb is not installed (pip install duckdb; scripts/install-deps.sh does)")
        sys.exit(3)
    return duckdb


def files_of(patterns):
    files = []
    for pattern in patterns:
        found = sorted(glob.glob(pattern))
        if not found:
            fail([f"no file matches {pattern}"])
        files.extend(found)
    return files


def roundtrip(csv_path, patterns):
    duckdb = duckdb_or_exit()
    header, rows = read_csv(csv_path)
    files = files_of(patterns)
    con = duckdb.connect()
    # file_row_number orders the rows as written, file by file.
    sql_files = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    con.execute(
        f"CREATE VIEW p AS SELECT * FROM read_parquet({sql_files}, filename = true, "
        "file_row_number = true)"
    )
    described = con.execute("DESCRIBE p").fetchall()
    columns = [(name, sql_type) for name, sql_type, *_ in described
               if name not in ("filename", "file_row_number")]
    names = [name for name, _ in columns]
    problems = []
    if names != header:
        fail([f"columns differ:\n  parquet {names}\n  csv     {header}"])
    order = f"list_position({sql_files}, filename), file_row_number"
    values = con.execute(
        "SELECT " + ", ".join(f'"{n}"' for n in names) + f" FROM p ORDER BY {order}"
    ).fetchall()
    if len(values) != len(rows):
        fail([f"{len(values)} Parquet rows, {len(rows)} CSV rows"])
    for i, (name, sql_type) in enumerate(columns):
        cells = [row[i] for row in rows]
        filled = [c for c in cells if c != ""]
        if name.endswith("_ts") and not sql_type.startswith("TIMESTAMP"):
            problems.append(f"{name}: a time stored as {sql_type}")
        if name.endswith("_s") and sql_type != "DOUBLE":
            problems.append(f"{name}: seconds stored as {sql_type}")
        if sql_type == "VARCHAR" and filled:
            if all(c in ("true", "false") for c in filled):
                problems.append(f"{name}: booleans stored as text")
            elif all(c.isdigit() for c in filled):
                problems.append(f"{name}: integers stored as text")
        for r, (value_row, text) in enumerate(zip(values, cells)):
            if not same_cell(value_row[i], sql_type, text):
                problems.append(
                    f"row {r + 1} column {name} ({sql_type}): parquet {value_row[i]!r}, csv {text!r}"
                )
                break
    # Counts and sums, each side computed by DuckDB.
    con.execute(
        f"CREATE VIEW c AS SELECT * FROM read_csv('{csv_path}', all_varchar = true, header = true)"
    )
    sums = 0
    for name, sql_type in columns:
        if sql_type in ("BIGINT", "DOUBLE"):
            cast = sql_type
            parquet_sum, = con.execute(f'SELECT SUM("{name}") FROM p').fetchone()
            csv_sum, = con.execute(f'SELECT SUM(CAST(NULLIF("{name}", \'\') AS {cast})) FROM c').fetchone()
        elif sql_type == "BOOLEAN":
            parquet_sum, = con.execute(f'SELECT COUNT(*) FILTER (WHERE "{name}") FROM p').fetchone()
            csv_sum, = con.execute(f"SELECT COUNT(*) FILTER (WHERE \"{name}\" = 'true') FROM c").fetchone()
        else:
            continue
        sums += 1
        if not close(parquet_sum, csv_sum):
            problems.append(f"sum of {name}: parquet {parquet_sum}, csv {csv_sum}")
    if problems:
        fail(problems)
    types = sorted({t for _, t in columns})
    print(f"roundtrip: {len(rows)} rows x {len(columns)} columns equal in {len(files)} file(s); "
          f"{sums} sums equal; types {types}")


def schema(path, like):
    duckdb = duckdb_or_exit()
    con = duckdb.connect()
    described = [con.execute(f"DESCRIBE SELECT * FROM read_parquet('{p}')").fetchall()
                 for p in (path, like)]
    columns = [[(name, sql_type) for name, sql_type, *_ in d] for d in described]
    if columns[0] != columns[1]:
        fail([f"columns differ:\n  {path} {columns[0]}\n  {like} {columns[1]}"])
    rows, = con.execute(f"SELECT COUNT(*) FROM read_parquet('{path}')").fetchone()
    print(f"schema: {rows} rows; the {len(columns[0])} columns and their types equal {like}'s")


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)


def run_servers_sql(engine, shards):
    query = open(os.path.join(REPO, "sql", "servers.sql")).read()
    if engine == "duckdb":
        duckdb = duckdb_or_exit()
        con = duckdb.connect()
        con.execute(f"CREATE VIEW connections AS SELECT * FROM read_parquet('{shards}')")
        result = con.execute(query)
        names = [d[0] for d in result.description]
        return names, [list(row) for row in result.fetchall()]
    if engine == "spark":
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            print("pyspark is not installed (pip install pyspark; scripts/install-deps.sh does)")
            sys.exit(3)
        if not any(os.access(os.path.join(d, "java"), os.X_OK)
                   for d in os.environ.get("PATH", "").split(os.pathsep)) \
                and not os.environ.get("JAVA_HOME"):
            print("java is not installed (a JRE; scripts/install-deps.sh installs one)")
            sys.exit(3)
        # Local mode on loopback only: no UI, no other address.
        os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
        spark = (SparkSession.builder.master("local[1]").appName("kascope-servers-sql")
                 .config("spark.driver.host", "127.0.0.1")
                 .config("spark.driver.bindAddress", "127.0.0.1")
                 .config("spark.ui.enabled", "false")
                 .config("spark.ui.showConsoleProgress", "false")
                 .config("spark.sql.shuffle.partitions", "1")
                 # Spark has no nanosecond timestamp type: it reads them as epoch nanoseconds.
                 .config("spark.sql.legacy.parquet.nanosAsLong", "true")
                 .getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
        try:
            spark.read.parquet(shards).createOrReplaceTempView("connections")
            frame = spark.sql(query)
            names = frame.columns
            return names, [list(row) for row in frame.collect()]
        finally:
            spark.stop()
    fail([f"unknown engine {engine} (duckdb or spark)"])


def servers(engine, shards, servers_csv):
    header, rows = read_csv(servers_csv)
    names, results = run_servers_sql(engine, shards)
    unknown = [name for name in names if name not in header]
    at = [header.index(name) for name in names if name in header]
    if unknown or at != sorted(at) or header[0] != names[0]:
        fail([f"columns are not the CSV's in its order:\n  sql {names}\n  csv {header}"])
    if len(results) != len(rows):
        fail([f"{engine}: {len(results)} servers, kascope {len(rows)}"])
    problems = []
    for r, (got, want) in enumerate(zip(results, rows)):
        for name, value, text in zip(names, got, [want[i] for i in at]):
            if isinstance(value, float) or (value is None and name.endswith("_s")):
                same = (value is None and text == "") or (text != "" and value is not None
                                                          and float(text) == value)
            else:
                same = as_csv_text(value if value != [] else None, None) == text
            if not same:
                problems.append(f"server row {r + 1} ({want[0]}) {name}: {engine} {value!r}, kascope {text!r}")
    if problems:
        fail(problems)
    connections = sum(int(row[header.index("connections")]) for row in rows)
    left = [name for name in header if name not in names]
    print(f"servers: {engine} gives kascope's {len(rows)} server rows ({connections} connections), "
          f"{len(names)} of {len(header)} columns (not computed: {', '.join(left) or 'none'}), "
          f"over {len(glob.glob(shards))} shards")


def main(argv):
    if len(argv) >= 3 and argv[0] == "roundtrip":
        roundtrip(argv[1], argv[2:])
    elif len(argv) == 3 and argv[0] == "schema":
        schema(argv[1], argv[2])
    elif len(argv) == 4 and argv[0] == "servers":
        servers(argv[1], argv[2], argv[3])
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
