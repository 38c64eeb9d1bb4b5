#!/usr/bin/env bash
# The README's curl examples against `moe serve` on the tiny model: a completion, a streamed chat
# ending with data: [DONE], /health and /metrics. Prints "curl tests: ok".
# usage: curl_test.sh MOE_BINARY MODEL_DIR
set -euo pipefail
moe=$1 model=$2
log=$(mktemp)
"$moe" serve --model "$model" --port 0 --threads 1 --ctx-size 256 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
port=""
for _ in $(seq 1 200); do
  port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$log")
  [[ -n $port ]] && curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  sleep 0.05
done
base="http://127.0.0.1:$port"
out=$(curl -sf "$base/v1/completions" -H 'Content-Type: application/json' \
  -d '{"prompt": "Once upon a time", "max_tokens": 8, "temperature": 0}')
grep -q '"object":"text_completion"' <<<"$out" && grep -q '"completion_tokens":8' <<<"$out" \
  || { echo "completion: $out"; exit 1; }
out=$(curl -sfN "$base/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "stream": true}')
grep -q '"object":"chat.completion.chunk"' <<<"$out" && [[ $(tail -n 1 <<<"$out") == "data: [DONE]" ]] \
  || { echo "chat stream: $out"; exit 1; }
# The counters are updated when the job ends, which may be just after the last chunk was sent.
metrics_ok=""
for _ in $(seq 1 40); do
  curl -sf "$base/metrics" | grep -q '^moe_generation_tokens_total [1-9]' && { metrics_ok=1; break; }
  sleep 0.05
done
[[ -n $metrics_ok ]] || { echo "metrics: $(curl -sf "$base/metrics" | grep generation_tokens)"; exit 1; }
kill -TERM $pid
wait $pid
echo "curl tests: ok"
