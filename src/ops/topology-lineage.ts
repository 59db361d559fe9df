import type { ComponentDeclaration, Topology } from '../topology/model.ts';

/** What a replay reaches: every component that will see records again, and the sinks among them. */
export interface ReplayReach {
  readonly components: readonly string[];
  readonly sinks: readonly string[];
  readonly topics: readonly string[];
}

/**
 * Follows topology.yaml downstream: records arriving on `topics` (or reprocessed by `components`)
 * reach every component reading those topics, then whatever reads their outputs, and so on.
 */
export function downstreamReach(topology: Topology, start: { topics?: readonly string[]; components?: readonly string[] }): ReplayReach {
  const all = Object.values(topology.components);
  const reached = new Map<string, ComponentDeclaration>();
  const topics = new Set<string>();
  const queue: string[] = [];
  const visitComponent = (component: ComponentDeclaration): void => {
    if (reached.has(component.label)) return;
    reached.set(component.label, component);
    for (const output of Object.values(component.outputs)) queue.push(output);
  };
  for (const label of start.components ?? []) {
    const component = topology.components[label];
    if (component) visitComponent(component);
  }
  queue.push(...(start.topics ?? []));
  while (queue.length > 0) {
    const topic = queue.shift() as string;
    if (topics.has(topic)) continue;
    topics.add(topic);
    for (const component of all) if (component.inputs.includes(topic)) visitComponent(component);
  }
  const components = [...reached.keys()].sort();
  return { components, sinks: components.filter((label) => reached.get(label)?.kind === 'sink'), topics: [...topics].sort() };
}

/** The component whose consumer group this is (`<app_id>.<label>`), if the topology declares it. */
export function componentOfGroup(topology: Topology, group: string): ComponentDeclaration | undefined {
  const prefix = `${topology.runtime.appId}.`;
  if (!group.startsWith(prefix)) return undefined;
  const component = topology.components[group.slice(prefix.length)];
  return component && component.kind !== 'source' ? component : undefined;
}
