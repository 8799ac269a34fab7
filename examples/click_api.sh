#!/usr/bin/env bash
# One Click API v3 call, as a server-side integration makes it for each visitor.
# Usage: SWITCHYARD_TOKEN=… ./click_api.sh [VISITOR_IP] [USER_AGENT]
set -euo pipefail
url=${SWITCHYARD_URL:-http://127.0.0.1:8080}
token=${SWITCHYARD_TOKEN:?set SWITCHYARD_TOKEN to the Click API token of a campaign}
ip=${1:-81.2.69.160}
default_ua='Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148'
ua=${2:-$default_ua}

curl -sS "$url/click_api/v3" \
  --data-urlencode "token=$token" \
  --data-urlencode "ip=$ip" \
  --data-urlencode "user_agent=$ua" \
  --data-urlencode "language=en" \
  --data-urlencode "referrer=https://www.google.com/search?q=running+shoes" \
  --data-urlencode "original_headers[Accept-Language]=en-US,en;q=0.9" \
  --data-urlencode "sub_id_1=banner-42" \
  --data-urlencode "info=1" \
  --data-urlencode "log=1"
echo
