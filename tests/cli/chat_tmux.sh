#!/usr/bin/env bash
# Drives `moe chat` in a real terminal: tmux runs it, send-keys types, capture-pane reads the
# screen. Two turns in one conversation (the second must reuse the KV cache), /reset, a third
# turn, then Ctrl-D must end the program with status 0.
#   chat_tmux.sh MOE_BINARY MODEL_DIR
set -euo pipefail
moe=$1
model=$2
command -v tmux >/dev/null || { echo "tmux is not installed (scripts/install-deps.sh installs it)"; exit 1; }

session="moe-chat-test-$$"
socket="moe-chat-test-$$"
t() { tmux -L "$socket" "$@"; }
trap 't kill-server 2>/dev/null || true' EXIT

t new-session -d -s "$session" -x 160 -y 60 \
  "'$moe' chat --model '$model' --temperature 0 --max-new-tokens 12 --stats; echo CHAT-EXITED-\$?; sleep 60"

screen() { t capture-pane -p -J -S -200 -t "$session"; }
# wait_for PATTERN [COUNT]: until PATTERN occurs at least COUNT times on the screen (10 s).
wait_for() {
  local pattern=$1 count=${2:-1}
  for _ in $(seq 1 200); do
    if [[ $(screen | grep -c -- "$pattern" || true) -ge $count ]]; then return 0; fi
    sleep 0.05
  done
  echo "timed out waiting for '$pattern' (x$count); screen:"
  screen
  exit 1
}

wait_for '^> '
t send-keys -t "$session" 'Hello, how are you?' Enter
wait_for '^decode ' 1
t send-keys -t "$session" 'Tell me more.' Enter
wait_for '^decode ' 2
wait_for 'more reused from the cache' 1
t send-keys -t "$session" '/reset' Enter
wait_for 'new conversation'
t send-keys -t "$session" 'A new start' Enter
wait_for '^decode ' 3
t send-keys -t "$session" C-d
wait_for 'CHAT-EXITED-0'
screen | sed -n '1,40p'
echo "chat under tmux: ok"
