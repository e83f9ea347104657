#!/bin/sh
# Heroku-style start-up: Streamlit must listen on the port the platform hands us in $PORT,
# and show viewers no developer menu or "Deploy" button.
set -e
mkdir -p "$HOME/.streamlit"
cat > "$HOME/.streamlit/config.toml" <<TOML
[server]
headless = true
port = ${PORT:-8501}
maxUploadSize = ${FER_MAX_UPLOAD_MB:-200}

[browser]
gatherUsageStats = false

[client]
toolbarMode = "viewer"
TOML
