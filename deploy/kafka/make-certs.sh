#!/bin/sh
# One-shot (compose service `kafka-certs`): on first use, a self-signed certificate authority and a
# broker certificate signed by it, with the JDK's keytool (in the Kafka image). Writes to /certs:
#   ca.p12 (the CA's key: keep it, or delete it once issued), ca.pem (what clients trust),
#   kafka.keystore.p12 (the broker's key and chain), truststore.p12 (the CA, for Kafka's own tools).
# The store password comes from the secret file /run/secrets/kafka_keystore_password.
set -eu
out=/certs
pass="$(cat /run/secrets/kafka_keystore_password)"
host="${KAFKA_ADVERTISED_HOST:-kafka}"
if [ -f "$out/kafka.keystore.p12" ]; then
  echo "certificates exist in $out; nothing to do"
  exit 0
fi
umask 077
tmp="$(mktemp -d)"
keytool -genkeypair -alias ca -dname "CN=Lifeline Kafka CA" -keyalg EC -groupname secp256r1 -validity 3650 \
  -ext bc:c -storetype PKCS12 -keystore "$tmp/ca.p12" -storepass "$pass"
keytool -exportcert -rfc -alias ca -keystore "$tmp/ca.p12" -storepass "$pass" > "$tmp/ca.pem"
keytool -genkeypair -alias kafka -dname "CN=$host" -keyalg EC -groupname secp256r1 -validity 825 \
  -storetype PKCS12 -keystore "$tmp/kafka.keystore.p12" -storepass "$pass"
keytool -certreq -alias kafka -keystore "$tmp/kafka.keystore.p12" -storepass "$pass" \
  | keytool -gencert -alias ca -keystore "$tmp/ca.p12" -storepass "$pass" -validity 825 \
      -ext "SAN=dns:$host,dns:localhost,ip:127.0.0.1" -ext ku:c=digitalSignature,keyEncipherment -ext eku=serverAuth -rfc > "$tmp/kafka.pem"
keytool -importcert -noprompt -alias ca -file "$tmp/ca.pem" -keystore "$tmp/kafka.keystore.p12" -storepass "$pass"
keytool -importcert -noprompt -alias kafka -file "$tmp/kafka.pem" -keystore "$tmp/kafka.keystore.p12" -storepass "$pass"
keytool -importcert -noprompt -alias ca -file "$tmp/ca.pem" -storetype PKCS12 -keystore "$tmp/truststore.p12" -storepass "$pass"
chmod 0644 "$tmp/ca.pem" "$tmp/truststore.p12"
chmod 0640 "$tmp/kafka.keystore.p12"
mv "$tmp"/ca.p12 "$tmp"/ca.pem "$tmp"/kafka.keystore.p12 "$tmp"/truststore.p12 "$out"/
chown "${CERTS_OWNER:-1000:1000}" "$out"/kafka.keystore.p12 "$out"/truststore.p12 "$out"/ca.pem
rm -rf "$tmp"
echo "certificate authority and broker certificate for $host written to $out"
