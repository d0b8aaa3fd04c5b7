#!/bin/bash
# ChromaDB's bin/docker_entrypoint.sh (chroma-core/chroma, as read in its
# repository): persistent, then uvicorn with the image's CMD, whose ${...} are
# expanded here (eval echo), as the image's script does.
set -e

export IS_PERSISTENT=1
export CHROMA_SERVER_NOFILE=${CHROMA_SERVER_NOFILE:-65536}

args="$@"

if [[ $args =~ ^uvicorn.* ]]; then
    echo "Starting server with args: $(eval echo "$args")"
    exec $(eval echo "$args")
else
    echo "Starting 'uvicorn chromadb.app:app' with args: $(eval echo "$args")"
    exec uvicorn chromadb.app:app $(eval echo "$args")
fi
