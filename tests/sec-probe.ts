import { readFileSync } from 'node:fs';
import { createKafka } from '../src/kafka/client.ts';
const creds = JSON.parse(readFileSync('/tmp/secure-home/kafka/credentials.json', 'utf8'));
const ca = '/tmp/secure-home/kafka/tls/ca.pem';
const show = (e: any) => { const chain = []; for (let c = e, i = 0; c && i < 5; i++, c = c.cause ?? c.originalError) chain.push({ name: c.name, code: c.code, type: c.type, retriable: c.retriable, message: String(c.message).slice(0, 160) }); return chain; };
async function attempt(label: string, config: any, action: (admin: any) => Promise<unknown>) {
  const admin = createKafka({ brokers: ['127.0.0.1:19192'], clientId: 'probe', ...config }).admin();
  try { await admin.connect(); console.log(label, 'OK', JSON.stringify(await action(admin)).slice(0, 200)); } catch (e) { console.log(label, JSON.stringify(show(e))); } finally { await admin.disconnect().catch(() => {}); }
}
await attempt('wrong-password', { tls: { caFile: ca }, sasl: { mechanism: 'scram-sha-512', username: 'lifeline', password: 'nope' } }, (a) => a.listTopics());
await attempt('unknown-ca', { tls: true, sasl: { mechanism: 'scram-sha-512', username: 'lifeline', password: creds.lifeline } }, (a) => a.listTopics());
await attempt('runtime-create', { tls: { caFile: ca }, sasl: { mechanism: 'scram-sha-512', username: 'lifeline', password: creds.lifeline } }, (a) => a.createTopics({ topics: [{ topic: 'x.y.z.v1' }] }));
await attempt('admin-create', { tls: { caFile: ca }, sasl: { mechanism: 'scram-sha-512', username: 'admin', password: creds.admin } }, (a) => a.createTopics({ topics: [{ topic: 'x.y.z.v1' }] }));
await attempt('runtime-delete', { tls: { caFile: ca }, sasl: { mechanism: 'scram-sha-512', username: 'lifeline', password: creds.lifeline } }, (a) => a.deleteTopics({ topics: ['x.y.z.v1'] }));
await attempt('runtime-fetchoffsets', { tls: { caFile: ca }, sasl: { mechanism: 'scram-sha-512', username: 'lifeline', password: creds.lifeline } }, (a) => a.fetchTopicMetadata({ topics: ['x.y.z.v1'] }));
