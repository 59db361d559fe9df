import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LifelineError } from '../../../src/errors.ts';
import { compileContract } from '../../../src/kafka/avro-contract.ts';
import { PHI_MASK, createPhiRedactor, maskPhi } from '../../../src/observe/phi-mask.ts';

const labResultSchema = {
  type: 'record', name: 'LabResult', namespace: 'lifeline.test',
  fields: [
    { name: 'result_id', type: 'string' },
    { name: 'patient', type: { type: 'record', name: 'Patient', fields: [
      { name: 'mrn', type: 'string', phi: true },
      { name: 'name', type: 'string', phi: true },
      { name: 'facility', type: 'string' },
    ] } },
    { name: 'lines', type: { type: 'array', items: { type: 'record', name: 'ResultLine', fields: [
      { name: 'code', type: 'string' },
      { name: 'mrn', type: 'string', phi: true },
    ] } } },
    { name: 'observers', type: { type: 'map', values: { type: 'record', name: 'Observer', fields: [
      { name: 'role', type: 'string' },
      { name: 'x', type: 'string', phi: true },
    ] } } },
    { name: 'guarantor', type: ['null', { type: 'record', name: 'Guarantor', fields: [{ name: 'ssn', type: 'string', phi: true }] }], default: null },
    { name: 'note', type: ['null', 'string'], default: null, phi: true },
    { name: 'payload', type: 'bytes' },
  ],
};

const contract = compileContract(labResultSchema);

function sampleResult() {
  return {
    result_id: 'LAB1|ACME|R0001',
    patient: { mrn: 'MRN-778812', name: 'Ada Lovelace', facility: 'MAIN' },
    lines: [{ code: 'CBC', mrn: 'MRN-778812' }, { code: 'LIPID', mrn: 'MRN-778813' }],
    observers: { primary: { role: 'attending', x: 'Dr Secret' }, backup: { role: 'resident', x: 'Dr Hidden' } },
    guarantor: { ssn: '123-45-6789' },
    note: 'HIV positive',
    payload: Buffer.from('opaque'),
  };
}

const expectedMasked = {
  result_id: 'LAB1|ACME|R0001',
  patient: { mrn: PHI_MASK, name: PHI_MASK, facility: 'MAIN' },
  lines: [{ code: 'CBC', mrn: PHI_MASK }, { code: 'LIPID', mrn: PHI_MASK }],
  observers: { primary: { role: 'attending', x: PHI_MASK }, backup: { role: 'resident', x: PHI_MASK } },
  guarantor: { ssn: PHI_MASK },
  note: PHI_MASK,
  payload: Buffer.from('opaque'),
};

describe('maskPhi', () => {
  test('the contract yields the paths the masking understands', () => {
    assert.deepEqual([...contract.phiPaths].sort(), ['guarantor.ssn', 'lines[].mrn', 'note', 'observers{}.x', 'patient.mrn', 'patient.name']);
  });

  test('masks nested records, array elements, map values and union branches', () => {
    assert.deepEqual(maskPhi(sampleResult(), contract.phiPaths), expectedMasked);
  });

  test('leaves null and undefined at a PHI path alone', () => {
    const value = { ...sampleResult(), guarantor: null, note: null, patient: { mrn: undefined, name: 'Ada', facility: 'MAIN' } };
    const masked = maskPhi(value, contract.phiPaths) as Record<string, unknown>;
    assert.equal(masked.guarantor, null);
    assert.equal(masked.note, null);
    assert.deepEqual(masked.patient, { mrn: undefined, name: PHI_MASK, facility: 'MAIN' });
    assert.equal(maskPhi(null, contract.phiPaths), null);
  });

  test('returns a deep copy and never mutates its input', () => {
    const value = sampleResult();
    const before = structuredClone(value);
    const masked = maskPhi(value, contract.phiPaths) as ReturnType<typeof sampleResult>;
    assert.deepEqual(value, { ...before, payload: Buffer.from('opaque') });
    assert.notEqual(masked.patient, value.patient);
    assert.notEqual(masked.lines, value.lines);
    assert.notEqual(masked.payload, value.payload, 'buffers are copied too');
    masked.lines.push({ code: 'EXTRA', mrn: 'x' });
    assert.equal(value.lines.length, 2);
  });

  test('handles avsc record class instances as plain objects', () => {
    const decoded: unknown = contract.type.fromBuffer(contract.type.toBuffer(sampleResult()));
    const patient = (decoded as { patient: object }).patient;
    assert.notEqual(Object.getPrototypeOf(patient), Object.prototype, 'avsc decodes records into class instances');
    const masked = maskPhi(decoded, contract.phiPaths);
    assert.deepEqual(masked, expectedMasked);
    assert.equal(Object.getPrototypeOf((masked as { patient: object }).patient), Object.prototype);
    assert.equal((decoded as { patient: { mrn: string } }).patient.mrn, 'MRN-778812', 'the decoded record is untouched');
  });

  test('a PHI field holding a whole record or array is masked whole', () => {
    const masked = maskPhi({ patient: { mrn: 'M1', addresses: ['a', 'b'] }, visits: [{ id: 1 }] }, ['patient', 'visits']);
    assert.deepEqual(masked, { patient: PHI_MASK, visits: PHI_MASK });
  });

  test('follows arrays of arrays, maps of arrays and top-level arrays', () => {
    assert.deepEqual(maskPhi({ grid: [[{ mrn: 'a', n: 1 }], [{ mrn: 'b', n: 2 }]] }, ['grid[][].mrn']), { grid: [[{ mrn: PHI_MASK, n: 1 }], [{ mrn: PHI_MASK, n: 2 }]] });
    assert.deepEqual(maskPhi({ byWard: { w1: [{ mrn: 'a' }] } }, ['byWard{}[].mrn']), { byWard: { w1: [{ mrn: PHI_MASK }] } });
    assert.deepEqual(maskPhi([{ mrn: 'a', code: 'X' }], ['[].mrn']), [{ mrn: PHI_MASK, code: 'X' }]);
  });

  test('values that do not match the schema shape are copied without failing', () => {
    assert.deepEqual(maskPhi({ lines: 'not an array', patient: 7 }, ['lines[].mrn', 'patient.mrn']), { lines: 'not an array', patient: 7 });
    const cyclic: Record<string, unknown> = { mrn: 'M1' };
    cyclic.self = cyclic;
    assert.deepEqual(maskPhi(cyclic, ['mrn']), { mrn: PHI_MASK, self: '[Circular]' });
  });

  test('a malformed path is a configuration error naming the path', () => {
    for (const path of ['', '.mrn', 'patient.', 'patient..mrn', 'lines[]mrn', 'patient.[]']) {
      assert.throws(() => maskPhi({}, [path]), (error: unknown) => error instanceof LifelineError && error.code === 'LL_CONFIG_INVALID' && error.message.includes(`"${path}"`), path);
    }
  });
});

describe('createPhiRedactor', () => {
  const redact = createPhiRedactor(new Map([
    ['partner.lab_result.received.v1', contract.phiPaths],
    ['odoo.product.changed.v1', []],
  ]));

  test('masks by the topic\'s paths', () => {
    assert.deepEqual(redact('partner.lab_result.received.v1', sampleResult()), expectedMasked);
  });

  test('copies a topic without PHI unmasked', () => {
    assert.deepEqual(redact('odoo.product.changed.v1', { sku: 'A-1', name: 'Gauze' }), { sku: 'A-1', name: 'Gauze' });
  });

  test('masks a record of an unknown topic whole, because nobody can say which fields are PHI', () => {
    assert.equal(redact('partner.unknown.received.v1', { mrn: 'MRN-1' }), PHI_MASK);
    assert.equal(redact('partner.unknown.received.v1', null), null, 'a tombstone stays a tombstone');
  });
});
