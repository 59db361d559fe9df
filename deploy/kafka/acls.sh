#!/bin/sh
# One-shot (compose service `kafka-acls`): grants the runtime principal User:lifeline what
# `lifeline run` needs and nothing else: read and write its topics, its consumer groups and
# transactional ids (app_id `lifeline`), and idempotent writes. It cannot delete topics, alter
# ACLs or touch other applications' topics. Run as admin; idempotent (kafka-acls adds what is missing).
# Until `lifeline apply` exists, `lifeline run` also creates its topics at start: CREATE and
# ALTER_CONFIGS on its own topic prefixes allow that, and can be removed once topics are applied.
set -eu
conf=/tmp/admin.properties
cat > "$conf" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(cat /run/secrets/kafka_admin_password)";
ssl.truststore.type=PKCS12
ssl.truststore.location=/certs/truststore.p12
ssl.truststore.password=$(cat /run/secrets/kafka_keystore_password)
PROPS
acl() { /opt/kafka/bin/kafka-acls.sh --bootstrap-server kafka:9093 --command-config "$conf" --add --allow-principal User:lifeline "$@"; }
for prefix in partner. billing. supply. odoo. ops. _lifeline.; do
  acl --resource-pattern-type prefixed --topic "$prefix" \
    --operation Read --operation Write --operation Describe --operation DescribeConfigs --operation Create --operation AlterConfigs
done
# Consumer groups: the app's (lifeline.<component>) and Lifeline's own short-lived ones (deleted after use).
acl --resource-pattern-type prefixed --group lifeline. --operation Read --operation Describe
acl --resource-pattern-type prefixed --group _lifeline. --operation Read --operation Describe --operation Delete
acl --resource-pattern-type prefixed --transactional-id lifeline. --operation Write --operation Describe
acl --cluster --operation IdempotentWrite --operation Describe
/opt/kafka/bin/kafka-acls.sh --bootstrap-server kafka:9093 --command-config "$conf" --list --principal User:lifeline
