import avro from 'avsc';

/**
 * Explains why a new schema cannot read data written with an old one (Avro's BACKWARD rule:
 * consumers on the new schema must read everything already in the topic). avsc's resolver
 * decides; this walk names the field and the rule that broke, which the resolver does not.
 */
export function backwardIncompatibilities(newType: avro.Type, oldType: avro.Type): string[] {
  try {
    newType.createResolver(oldType);
    return [];
  } catch (error) {
    const found = explain(newType, oldType, newType.name ?? newType.typeName);
    return found.length > 0 ? found : [`${newType.name ?? newType.typeName}: ${(error as Error).message}`];
  }
}

function canRead(reader: avro.Type, writer: avro.Type): boolean {
  try {
    reader.createResolver(writer);
    return true;
  } catch {
    return false;
  }
}

function explain(reader: avro.Type, writer: avro.Type, path: string): string[] {
  if (reader instanceof avro.types.RecordType && writer instanceof avro.types.RecordType) {
    const problems: string[] = [];
    for (const field of reader.fields) {
      const old = writer.fields.find((candidate) => candidate.name === field.name || (field.aliases ?? []).includes(candidate.name));
      const fieldPath = `${path}.${field.name}`;
      if (!old) {
        if (field.defaultValue() === undefined) {
          problems.push(`field ${fieldPath} was added without a default (BACKWARD: a new field needs a default so records written before it can be read)`);
        }
        continue;
      }
      if (!canRead(field.type, old.type)) {
        const nested = explain(field.type, old.type, fieldPath);
        problems.push(...(nested.length > 0 ? nested : [
          `field ${fieldPath} changed type from ${describe(old.type)} to ${describe(field.type)} (BACKWARD: the new type must be able to read the old one; only Avro promotions such as int→long or a union that includes the old type are allowed)`,
        ]));
      }
    }
    return problems;
  }
  if (reader instanceof avro.types.EnumType && writer instanceof avro.types.EnumType) {
    const missing = writer.symbols.filter((symbol) => !reader.symbols.includes(symbol));
    if (missing.length > 0 && (reader as unknown as { default?: string }).default === undefined) {
      return [`enum ${path} removed symbol(s) ${missing.join(', ')} without a default (BACKWARD: old records may hold them)`];
    }
  }
  if (reader instanceof avro.types.ArrayType && writer instanceof avro.types.ArrayType) return explain(reader.itemsType, writer.itemsType, `${path}[]`);
  if (reader instanceof avro.types.MapType && writer instanceof avro.types.MapType) return explain(reader.valuesType, writer.valuesType, `${path}{}`);
  return [];
}

function describe(type: avro.Type): string {
  if (type instanceof avro.types.UnwrappedUnionType || type instanceof avro.types.WrappedUnionType) {
    return `[${type.types.map(describe).join(', ')}]`;
  }
  return type.name ?? type.typeName;
}
