import { LifelineError } from '../errors.ts';
import type { ComponentDefinition, ConnectionKind } from './component.ts';

/** An explicit list of component types; the CLI builds it and hands it to the runtime. */
export class ComponentRegistry {
  private readonly byType = new Map<string, ComponentDefinition>();

  constructor(definitions: readonly ComponentDefinition[] = []) {
    for (const definition of definitions) this.register(definition);
  }

  register(definition: ComponentDefinition): this {
    if (this.byType.has(definition.type)) throw new Error(`component type ${definition.type} is registered twice`);
    for (const connection of definition.connections ?? []) {
      const known = this.connectionKinds().get(connection.kind);
      if (known && known !== connection) throw new Error(`connection kind ${connection.kind} is declared twice, differently (${definition.type}): share one definition`);
    }
    this.byType.set(definition.type, definition);
    return this;
  }

  has(type: string): boolean {
    return this.byType.has(type);
  }

  get(type: string): ComponentDefinition {
    const definition = this.byType.get(type);
    if (!definition) {
      throw new LifelineError('LL_COMPONENT_UNKNOWN', `unknown component type "${type}"; known types: ${this.types().join(', ')}`, { details: { type } });
    }
    return definition;
  }

  types(): string[] {
    return [...this.byType.keys()].sort();
  }

  /** Every kind of connection the registered components declare, by its key under `connections:`. */
  connectionKinds(): ReadonlyMap<string, ConnectionKind> {
    const kinds = new Map<string, ConnectionKind>();
    for (const definition of this.byType.values()) for (const connection of definition.connections ?? []) kinds.set(connection.kind, connection);
    return kinds;
  }

  all(): ComponentDefinition[] {
    return this.types().map((type) => this.byType.get(type) as ComponentDefinition);
  }
}
