# The smallest useful question, in jq: cancels per origin kind with their
# detect-to-close percentiles (nearest rank). No join, one dimension.
# Written the fast way (appending to arrays inside reduce is quadratic in
# jq 1.6): the first jq keeps two fields, the second slurps and groups.
#   jq -c 'select(.event == "cancel") | [.origin.kind, .detect_to_close_us]' LOG \
#     | jq -s -f bench/log/by_kind.jq
def pct(p): length as $n
  | if $n == 0 then null else .[([((($n * p) | ceil) - 1), 0] | max)] end;
group_by(.[0])
| map((map(.[1] | select(. != null)) | sort) as $d
  | {key: .[0][0], value: {cancels: length, p50: ($d | pct(0.5)),
     p90: ($d | pct(0.9)), p99: ($d | pct(0.99)), max: $d[-1]}})
| from_entries
