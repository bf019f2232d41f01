# What `cancelproxy-log stats` computes, in jq: cancels by origin kind, hop,
# phase, upstream and model (the model joined from the request record of
# the same request at the same hop), each with detect-to-close p50/p90/p99/
# max, cancels with nothing to close, time into the request p50/p90 and SSE
# events per cancel. Written the fast way: a first jq keeps the few fields
# of the records that matter, a second one slurps those and groups:
#   jq -c -f bench/log/select.jq LOG | jq -s -f bench/log/stats.jq
# Input rows: [event, hop, request_id, model, kind, phase, upstream,
#              detect_to_close_us, elapsed_ms, sse_events]
def pct(p): length as $n
  | if $n == 0 then null else .[([((($n * p) | ceil) - 1), 0] | max)] end;
def summary:
  (map(.[7] | select(. != null)) | sort) as $d
  | (map(.[8] | select(. != null)) | sort) as $e
  | {cancels: length, close_p50: ($d | pct(0.5)), close_p90: ($d | pct(0.9)),
     close_p99: ($d | pct(0.99)), close_max: $d[-1],
     no_close: (length - ($d | length)),
     at_p50: ($e | pct(0.5)), at_p90: ($e | pct(0.9)),
     events: ((map(.[9]) | add) / length)};
def by(f): group_by(f) | map({key: (.[0] | f // "-"), value: summary})
  | from_entries;
(map(select(.[0] == "request") | {key: (.[1] + " " + .[2]), value: .[3]})
  | from_entries) as $model
| map(select(.[0] == "cancel") | .[3] = $model[.[1] + " " + .[2]])
| {all: summary, kind: by(.[4]), hop: by(.[1]), phase: by(.[5]),
   upstream: by(.[6]), model: by(.[3])}
