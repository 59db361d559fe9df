#!/bin/sh
# The broker (compose service `kafka`): single-node KRaft with one SASL_SSL listener for clients and
# StandardAuthorizer ACLs. On first start the storage is formatted with the SCRAM users (admin:
# `lifeline apply`, topics and ACLs; lifeline: the runtime; the passwords are secret files).
set -eu
umask 077
props=/tmp/server.properties
secret() { cat "/run/secrets/$1"; }
store_pass="$(secret kafka_keystore_password)"
admin_pass="$(secret kafka_admin_password)"
cat > "$props" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:9094
# Clients (and the broker itself) on SASL_SSL; the controller only on the container's loopback.
listeners=SASL_SSL://:9093,CONTROLLER://127.0.0.1:9094
advertised.listeners=SASL_SSL://${KAFKA_ADVERTISED_HOST:-kafka}:9093
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=SASL_SSL
controller.listener.names=CONTROLLER
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${admin_pass}";
ssl.keystore.type=PKCS12
ssl.keystore.location=/certs/kafka.keystore.p12
ssl.keystore.password=${store_pass}
ssl.key.password=${store_pass}
ssl.endpoint.identification.algorithm=https
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
# admin is the broker's own principal and the operator's for `lifeline apply`; ANONYMOUS is the
# controller listener, bound to 127.0.0.1 inside this container.
super.users=User:admin;User:ANONYMOUS
log.dirs=/var/lib/kafka/data
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
# For the healthcheck and an operator's `docker compose exec kafka …` tools: admin over SASL_SSL.
umask 077
cat > /tmp/admin.properties <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${admin_pass}";
ssl.truststore.type=PKCS12
ssl.truststore.location=/certs/truststore.p12
ssl.truststore.password=${store_pass}
PROPS
if [ ! -f /var/lib/kafka/data/meta.properties ]; then
  /opt/kafka/bin/kafka-storage.sh format --config "$props" --cluster-id "$(/opt/kafka/bin/kafka-storage.sh random-uuid)" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=${admin_pass}]" \
    --add-scram "SCRAM-SHA-512=[name=lifeline,password=$(secret kafka_runtime_password)]"
fi
exec /opt/kafka/bin/kafka-server-start.sh "$props"
