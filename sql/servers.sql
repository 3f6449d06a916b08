-- The per-server table (kascope --servers-csv) from connection shards (kascope --parquet).
--
-- Each sensor or capture file writes its connection rows as a Parquet shard; this query reads
-- them all as one view, `connections`, and gives the rows and columns kascope prints for all
-- the captures read together (docs/scale.md). It is plain SQL that DuckDB and Spark SQL both
-- run unchanged:
--
--   duckdb -c "CREATE VIEW connections AS SELECT * FROM 'shards/*.parquet'" -c ".read sql/servers.sql"
--   spark.read.parquet("shards/*.parquet").createOrReplaceTempView("connections")
--   spark.sql(open("sql/servers.sql").read())
--
-- It computes every column that connection rows determine exactly, in kascope's order; it
-- leaves out the columns made from transactions (status_2xx…5xx, ttfb_median_s, ttfb_p95_s),
-- those kascope sums in nanoseconds before rounding (rtt_saved_s, idle_connection_s: a sum of
-- the rounded *_s cells may differ by microseconds), peak_connections, and the inferences
-- from clusters of idle closes and from per-side probes (observed_idle_timeout_s and what
-- follows from it, tcp_keepalive_interval_s).
--
-- Differences from kascope's own table, only past its memory bounds: kascope keeps the first
-- 8 distinct values of each list column per server, 100,000 idle-close samples and 10,000
-- handshake samples per server for the medians; this query keeps all. A list with no values
-- is NULL (DuckDB) or empty (Spark) where kascope writes an empty cell.
WITH http AS (
  SELECT * FROM connections WHERE protocol = 'http'
),
idle AS (
  SELECT server, idle_close_s,
         ROW_NUMBER() OVER (PARTITION BY server ORDER BY idle_close_s) AS n,
         COUNT(*) OVER (PARTITION BY server) AS total
  FROM http
  -- the closes about idleness: the server closed first after a complete response, without
  -- announcing it, not at its max= limit, not asked for, not a tunnel
  WHERE closer IN ('server-fin', 'server-rst')
    AND idle_close_s IS NOT NULL
    AND close_announced_at IS NULL
    AND NOT array_contains(flags, 'tunnel')
    AND (implied_request_limit IS NULL OR implied_request_limit <> responses)
    AND NOT array_contains(client_connection, 'close')
    AND COALESCE(client_http, '') <> '0.9'
    AND NOT (COALESCE(client_http, '') = '1.0' AND NOT array_contains(client_connection, 'keep-alive'))
),
announced AS (
  -- where the server announced `Connection: close` on connections the client did not ask
  -- to close, and how often
  SELECT server, close_announced_at AS position, COUNT(*) AS announcements
  FROM http
  WHERE close_announced_at IS NOT NULL
    AND NOT array_contains(flags, 'tunnel')
    AND NOT array_contains(client_connection, 'close')
    AND NOT (COALESCE(client_http, '') = '1.0' AND NOT array_contains(client_connection, 'keep-alive'))
  GROUP BY server, close_announced_at
),
limits AS (
  -- the request limit: the furthest position announced more than once
  SELECT server, MAX(position) AS position FROM announced WHERE announcements >= 2 GROUP BY server
),
rtts AS (
  SELECT server, handshake_rtt_s,
         ROW_NUMBER() OVER (PARTITION BY server ORDER BY handshake_rtt_s) AS n,
         COUNT(*) OVER (PARTITION BY server) AS total
  FROM http
  WHERE handshake_rtt_s IS NOT NULL
),
handshakes AS (
  SELECT server,
         MAX(CASE WHEN n = FLOOR(total / 2) + 1 THEN handshake_rtt_s END) AS handshake_rtt_median_s
  FROM rtts
  GROUP BY server
),
idle_closes AS (
  SELECT server,
         COUNT(*) AS idle_closes,
         MIN(idle_close_s) AS idle_close_min_s,
         -- the upper median, as kascope takes it
         MAX(CASE WHEN n = FLOOR(total / 2) + 1 THEN idle_close_s END) AS idle_close_median_s,
         MAX(idle_close_s) AS idle_close_max_s
  FROM idle
  GROUP BY server
),
timeouts AS (
  SELECT server, array_sort(array_distinct(array_agg(timeout))) AS keep_alive_timeouts
  FROM (
    SELECT server, keep_alive_timeout_first AS timeout FROM http
    UNION ALL
    SELECT server, keep_alive_timeout_last AS timeout FROM http
  ) adverts
  WHERE timeout IS NOT NULL
  GROUP BY server
),
per_server AS (
  SELECT server,
         array_sort(array_distinct(array_agg(server_software) FILTER (WHERE server_software <> '')))
           AS server_software,
         COUNT(*) AS connections,
         SUM(requests) AS requests,
         ROUND(CAST(SUM(requests) AS DOUBLE) / COUNT(*) * 100) / 100 AS reuse_mean,
         MAX(requests) AS reuse_max,
         SUM(CASE WHEN pipeline_depth > 1 THEN 1 ELSE 0 END) AS pipelined_connections,
         array_sort(array_distinct(array_agg(keep_alive_max_first) FILTER (WHERE keep_alive_max_first IS NOT NULL)))
           AS keep_alive_max_first,
         SUM(CASE WHEN max_verdict = 'honoured' THEN 1 ELSE 0 END) AS max_honoured,
         SUM(CASE WHEN max_verdict = 'exceeded' THEN 1 ELSE 0 END) AS max_exceeded,
         SUM(CASE WHEN max_verdict = 'untested' THEN 1 ELSE 0 END) AS max_untested,
         SUM(CASE WHEN timeout_verdict = 'honoured' THEN 1 ELSE 0 END) AS timeout_honoured,
         SUM(CASE WHEN timeout_verdict = 'closed-early' THEN 1 ELSE 0 END) AS timeout_closed_early,
         SUM(CASE WHEN timeout_verdict = 'untested' THEN 1 ELSE 0 END) AS timeout_untested,
         SUM(CASE WHEN race_request IS NOT NULL THEN 1 ELSE 0 END) AS races,
         SUM(CASE WHEN unannounced_close THEN 1 ELSE 0 END) AS unannounced_closes,
         SUM(CASE WHEN violation THEN 1 ELSE 0 END) AS violations,
         -- connections where a promise was tested and held
         SUM(CASE WHEN max_verdict = 'honoured' OR timeout_verdict = 'honoured' OR close_honoured
                  THEN 1 ELSE 0 END) AS kept,
         -- each request answered on a connection already open saved a handshake
         SUM(GREATEST(requests - unanswered_requests - 1, 0)) AS handshakes_avoided,
         MAX(responses) AS most_responses,
         MAX(max_idle_s) AS max_reuse_idle_s
  FROM http
  GROUP BY server
)
SELECT s.server,
       s.server_software,
       s.connections,
       s.requests,
       s.reuse_mean,
       s.reuse_max,
       s.pipelined_connections,
       t.keep_alive_timeouts,
       s.keep_alive_max_first,
       COALESCE(i.idle_closes, 0) AS idle_closes,
       i.idle_close_min_s,
       i.idle_close_median_s,
       i.idle_close_max_s,
       s.max_honoured,
       s.max_exceeded,
       s.max_untested,
       s.timeout_honoured,
       s.timeout_closed_early,
       s.timeout_untested,
       s.races,
       s.unannounced_closes,
       s.violations,
       CASE WHEN s.violations > 0 THEN 'broken'
            WHEN s.races > 0 THEN 'races'
            WHEN s.kept > 0 THEN 'kept'
            ELSE 'untested' END AS verdict,
       h.handshake_rtt_median_s,
       s.handshakes_avoided,
       -- ... provided no connection went past it
       CASE WHEN l.position >= s.most_responses THEN l.position END AS observed_request_limit,
       s.max_reuse_idle_s
FROM per_server s
LEFT JOIN timeouts t ON t.server = s.server
LEFT JOIN idle_closes i ON i.server = s.server
LEFT JOIN handshakes h ON h.server = s.server
LEFT JOIN limits l ON l.server = s.server
ORDER BY s.connections DESC, s.server;
