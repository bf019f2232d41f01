# The first half of the jq equivalent of `cancelproxy-log stats` (see
# stats.jq): cancel records and the request records of canceled requests,
# cut down to the fields the statistics need.
select(.event == "cancel"
    or (.event == "request" and .outcome == "canceled"))
| [.event, .hop, .request_id, .model, .origin.kind, .phase, .upstream,
   .detect_to_close_us, .elapsed_ms, .sse_events]
