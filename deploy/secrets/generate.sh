#!/usr/bin/env bash
# Writes the compose stack's secret files into deploy/secrets/ (once: existing files are kept),
# readable by their owner only. Git ignores them. odoo_api_key starts empty: create the Odoo
# integration user and its API key, then write the key there (docs/operations.md, "Deploying").
set -euo pipefail
cd "$(dirname "$0")"
umask 077
random() { head -c 32 /dev/urandom | base64 | tr -d '/+=' | head -c 40; }
for name in kafka_keystore_password kafka_admin_password kafka_runtime_password postgres_password registry_db_password grafana_admin_password; do
  [ -s "$name" ] || { random > "$name"; echo "wrote deploy/secrets/$name"; }
done
for partner in quest_lab labcorp mckesson medline; do
  name="webhook_secret_$partner"
  [ -s "$name" ] || { echo "whsec_$(head -c 32 /dev/urandom | base64)" > "$name"; echo "wrote deploy/secrets/$name (give it to the partner)"; }
done
[ -s registry_datasource.properties ] || { echo "apicurio.datasource.password=$(cat registry_db_password)" > registry_datasource.properties; echo "wrote deploy/secrets/registry_datasource.properties"; }
[ -e odoo_api_key ] || { : > odoo_api_key; echo "created deploy/secrets/odoo_api_key (empty: put the Odoo integration user's API key in it)"; }
