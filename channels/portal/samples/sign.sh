#!/usr/bin/env bash
# sign.sh — sign a JSON body as a Standard Webhooks request and POST it to Switchboard.
#
# Usage:
#   sign.sh SECRET BODY_FILE
#     SECRET     the portal secret, `whsec_<base64>`, or `@PATH` to read it from a file
#     BODY_FILE  the JSON body to send, byte for byte (e.g. message.created.json)
#
# Environment (all optional):
#   URL                target, default http://127.0.0.1:8080/webhooks/portal
#   WEBHOOK_ID         webhook-id header, default a fresh random `msg_…` id.
#                      Send the same id twice to see the idempotent replay.
#   WEBHOOK_TIMESTAMP  webhook-timestamp (Unix seconds), default now.
#                      Set it 10 minutes back to see the 401 for a stale request.
#
# The signature is  v1,<base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>"))>
# where key is the base64-decoded part of the secret after `whsec_`.
# Needs bash, openssl, od, curl. Prints the response status line, headers and body.
# For testing: the HMAC key is briefly visible in the process list (openssl's arguments).
set -euo pipefail

if [[ $# -ne 2 ]]; then
    sed -n '4,14s/^# \{0,1\}//p' "$0" >&2
    exit 2
fi

secret=$1
body_file=$2
url=${URL:-http://127.0.0.1:8080/webhooks/portal}

if [[ $secret == @* ]]; then
    secret=$(<"${secret#@}")          # $(<…) drops the trailing newline
fi
if [[ $secret != whsec_* ]]; then
    echo "sign.sh: the secret must start with whsec_" >&2
    exit 2
fi
[[ -r $body_file ]] || { echo "sign.sh: cannot read $body_file" >&2; exit 2; }

# HMAC key: the secret's base64 part, decoded, as hex for openssl.
key_hex=$(printf '%s' "${secret#whsec_}" | openssl base64 -d -A | od -An -v -tx1 | tr -d ' \n')
[[ -n $key_hex ]] || { echo "sign.sh: the secret's base64 part is empty or invalid" >&2; exit 2; }

msg_id=${WEBHOOK_ID:-msg_$(openssl rand -hex 12)}
timestamp=${WEBHOOK_TIMESTAMP:-$(date +%s)}

# Sign "<id>.<timestamp>.<body>" over the file's exact bytes (no re-encoding, no newline added).
signature=$(
    { printf '%s.%s.' "$msg_id" "$timestamp"; cat -- "$body_file"; } |
        openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key_hex" -binary |
        openssl base64 -A
)

echo "webhook-id: $msg_id" >&2
echo "webhook-timestamp: $timestamp" >&2
echo "webhook-signature: v1,$signature" >&2

curl -sS -i \
    -X POST "$url" \
    -H 'Content-Type: application/json' \
    -H "webhook-id: $msg_id" \
    -H "webhook-timestamp: $timestamp" \
    -H "webhook-signature: v1,$signature" \
    --data-binary "@$body_file"
echo
