#!/usr/bin/env bash
# A self-signed certificate for local HTTPS, for development only:
#   tools/make-dev-cert.sh [DIR]          (default ./certs; `make certs` runs this)
# Writes DIR/tls.crt and DIR/tls.key for localhost, *.localhost and 127.0.0.1, valid 825 days
# (the longest browsers accept). Your browser will warn: it trusts no self-signed
# certificate. In production use your CA's certificate or an ACME client (certbot, lego,
# acme.sh) writing the same two files; see README "HTTPS".
set -euo pipefail
dir=${1:-certs}
mkdir -p "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 825 \
  -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,DNS:*.localhost,IP:127.0.0.1" \
  -keyout "$dir/tls.key" -out "$dir/tls.crt" 2>/dev/null
# nginx runs as an unprivileged user (uid 101) in its container and must read the key.
# Fine for a throw-away development key; never for a real one.
chmod 0644 "$dir/tls.key" "$dir/tls.crt"
echo "wrote $dir/tls.crt and $dir/tls.key (self-signed, development only)"
