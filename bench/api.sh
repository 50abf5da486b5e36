#!/usr/bin/env bash
# api.sh BARAM - the REST API under load (issue 4's figures), printed as markdown:
#   1. `wrk` GET /api/v1/dags with a valid token, 64 connections, while a
#      2000-task wide run executes in the same `baram standalone`; and the
#      run's wall time with and without that load, in PAIRS pairs (alone, then
#      loaded) so that drift on a shared machine hits both sides
#   2. 256 Server-Sent Events subscribers attached while the run executes:
#      how many received every event
# Environment: HOME_DIR (a tmpfs folder: /dev/shm), PAIRS (5), CONNS (64),
# SUBS (256), TASKS (2000), PAR (8), SPLIT=1 (`baram scheduler` and `baram api`
# as two processes instead of `baram standalone`), WRK_THREADS (2); the API's
# own knobs BARAM_API_THREADS, BARAM_API_MAX_RPS and BARAM_API_NICE pass through.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BARAM=$(realpath "${1:?usage: api.sh BARAM}")
command -v wrk >/dev/null || { echo "api.sh: wrk not found (apt-get install wrk)" >&2; exit 2; }
PAIRS=${PAIRS:-5}
CONNS=${CONNS:-64}
SUBS=${SUBS:-256}
TASKS=${TASKS:-2000}
PAR=${PAR:-8}
exec python3 "$HERE/api/drive.py" "$BARAM" --pairs "$PAIRS" --conns "$CONNS" --subs "$SUBS" \
    --tasks "$TASKS" --par "$PAR" --tmp "${HOME_DIR:-/dev/shm}" $([ "${SPLIT:-0}" = 1 ] && echo --split)
