complete -c kascope -s r -l read -d 'Capture file to read (repeatable; files are read in order as one capture). With -r, every word after the options is the filter' -r -F
complete -c kascope -s c -l count -d 'Stop after this many packets (files and live; counted after the filter)' -r
complete -c kascope -s i -l interface -d 'Capture live from this interface (`any` for all) instead of reading files; needs CAP_NET_RAW and CAP_NET_ADMIN (root)' -r
complete -c kascope -l duration -d 'Live: stop after this long (`30s`, `5m`, `1h`, `1d`; at most 365 days)' -r
complete -c kascope -s w -l write -d 'Live: also save the captured packets (those the filter passes) to FILE as pcap, like tcpdump -w' -r -F
complete -c kascope -s s -l snaplen -d 'Live: bytes captured per packet (68 to 262144, or 0 for 262144, as tcpdump)' -r
complete -c kascope -l csv -d 'Write one CSV row per connection to FILE (`-`: standard output; columns: docs/csv.md)' -r -F
complete -c kascope -l transactions-csv -d 'Write one CSV row per HTTP request/response pair to FILE' -r -F
complete -c kascope -l json -d 'Write one JSON object per connection per line to FILE' -r -F
complete -c kascope -l servers-csv -d 'Write one CSV row per server to FILE' -r -F
complete -c kascope -l findings-json -d 'Write the findings (problems found, with evidence and advice) as JSON lines to FILE' -r -F
complete -c kascope -l html -d 'Write a self-contained HTML report (timelines, distributions, findings) to FILE' -r -F
complete -c kascope -l parquet -d 'Write the connection rows as typed Parquet columns to FILE (docs/csv.md, docs/scale.md)' -r -F
complete -c kascope -l transactions-parquet -d 'Write the transaction rows as typed Parquet columns to FILE' -r -F
complete -c kascope -l servers-parquet -d 'Write the per-server rows as typed Parquet columns to FILE' -r -F
complete -c kascope -l rotate -d 'Live: close the connection and transaction Parquet files and start new ones this often (`10m`, `1h`; 1s to 365 days), each named FILE-<UTC start time>.parquet' -r
complete -c kascope -l time-format -d 'Times in CSV files: `epoch` seconds with microseconds, or `iso` (RFC 3339, UTC, with microseconds, which spreadsheets read as dates). JSON always has epoch numbers' -r -f -a "epoch\t''
iso\t''"
complete -c kascope -l rows -d 'Most rows each table shows' -r
complete -c kascope -l only -d 'Show only the connections with a keep-alive race, a broken promise, or any flag (repeatable or comma-separated: any of them)' -r -f -a "races\t''
violations\t''
flagged\t''"
complete -c kascope -l sort -d 'Order the connection table by this column (numbers: largest first)' -r -f -a "stream\t''
start\t''
dur\t''
reqs\t''
resps\t''
depth\t''
after\t''
idle-cls\t''"
complete -c kascope -l fail-on -d 'Exit with status 1 when a server broke a Keep-Alive promise (`violation`), when a keep-alive race was seen (`race`), or either (`any`)' -r -f -a "violation\t''
race\t''
any\t''"
complete -c kascope -l timeout-tolerance -d 'An idle close this long before the advertised timeout still honours it (0 to 1h)' -r
complete -c kascope -l race-window -d 'An unanswered request sent up to this long before the server\'s idle close counts as a keep-alive race (0 to 1h)' -r
complete -c kascope -l reassembly-limit -d 'Out-of-order bytes buffered per direction before a hole is given up (16KiB to 1GiB)' -r
complete -c kascope -l idle-timeout -d 'Time without packets after which an open connection is written out as evicted (1s to 365 days; plain numbers are seconds)' -r
complete -c kascope -l max-memory -d 'Memory the connection table may use (8MiB to 1TiB; e.g. 512MiB, 2G); past it the connections idle the longest are written out early, flagged memory-budget' -r
complete -c kascope -s j -l threads -d 'Threads (1 to 256; default for files: the machine\'s cores, at most 8; live: 1). Files: one reads ahead, one analyses, or (3 and more) one routes frames to the others, each analysing a share of the connections (by address and port); live: one captures. The output is the same as with 1, unless --max-memory is reached (each analysing thread keeps to its share of it). --ebpf uses one' -r
complete -c kascope -s n -d 'Accepted for tcpdump\'s sake: kascope never resolves addresses or ports to names'
complete -c kascope -s v -l verbose -d 'Say on standard error what is read (files, filter) and how fast'
complete -c kascope -s D -l list-interfaces -d 'List the interfaces that can be captured on, and exit'
complete -c kascope -l ebpf -d 'Live: capture through an eBPF socket filter that leaves HTTP body bytes in the kernel (only their length comes up); needs CAP_BPF besides CAP_NET_RAW'
complete -c kascope -s p -l no-promiscuous-mode -d 'Live: do not put the interface into promiscuous mode'
complete -c kascope -s q -l quiet -d 'Print only the summary lines and the findings, no tables'
complete -c kascope -l servers -d 'Print only the per-server table'
complete -c kascope -l wide -d 'Show every column, however wide the terminal (by default the tables fit `COLUMNS` or the terminal\'s width, dropping the least important columns)'
complete -c kascope -l no-progress -d 'Never draw the progress bar'
complete -c kascope -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kascope -s V -l version -d 'Print version'
