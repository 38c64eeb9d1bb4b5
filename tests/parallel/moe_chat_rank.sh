#!/bin/sh
# Runs `moe chat ARGS...` as an MPI rank; rank 0 reads a pipe that stays open for 60 s, so rank 0
# waits for input and the other ranks wait in rank 0's next broadcast (the dead-rank test kills one).
#   moe_chat_rank.sh MOE ARGS...
moe="$1"
shift
if [ "${OMPI_COMM_WORLD_RANK:-0}" = 0 ]; then
  echo "rank 0: waiting for input" >&2
  sleep 60 | "$moe" chat "$@"
else
  exec "$moe" chat "$@"
fi
