import { deadLetterTopic, type ComponentDeclaration, type Topology } from './model.ts';

/**
 * `lifeline topology graph`: topics and components as nodes, edges input → component → output,
 * labelled with the output name. A dead-letter topic appears (dashed) only when a component in
 * the topology reads it, so the picture stays about the flows people designed.
 */
interface GraphModel {
  /** Topic name -> node id. */
  readonly topics: ReadonlyMap<string, string>;
  readonly components: ReadonlyArray<{ readonly id: string; readonly component: ComponentDeclaration }>;
  readonly edges: ReadonlyArray<{ readonly from: string; readonly to: string; readonly label?: string; readonly deadLetter?: boolean }>;
}

function graphModel(topology: Topology): GraphModel {
  const components = Object.values(topology.components);
  const topicNames = new Set(Object.keys(topology.topics));
  for (const component of components) {
    for (const topic of component.inputs) topicNames.add(topic);
    for (const topic of Object.values(component.outputs)) topicNames.add(topic);
  }
  // Ids by position: topic names may differ only in characters an id cannot hold (a.b_c, a_b.c).
  const topics = new Map([...topicNames].sort().map((name, index): [string, string] => [name, `topic_${index}`]));
  const componentId = (label: string): string => `component_${label}`;
  const edges: Array<GraphModel['edges'][number]> = [];
  for (const component of components) {
    for (const topic of component.inputs) edges.push({ from: topics.get(topic) as string, to: componentId(component.label) });
    for (const [output, topic] of Object.entries(component.outputs)) {
      edges.push({ from: componentId(component.label), to: topics.get(topic) as string, label: output });
    }
    const deadLetters = topics.get(deadLetterTopic(component.label));
    if (component.onError === 'dlq' && deadLetters) edges.push({ from: componentId(component.label), to: deadLetters, label: 'dead letters', deadLetter: true });
  }
  return { topics, components: components.map((component) => ({ id: componentId(component.label), component })), edges };
}

/** A Mermaid flowchart: paste it into Markdown (GitHub renders it) or mermaid.live. */
export function toMermaid(topology: Topology): string {
  const graph = graphModel(topology);
  const lines = ['flowchart LR'];
  for (const [name, id] of graph.topics) lines.push(`  ${id}[("${mermaidText(name)}")]`);
  for (const { id, component } of graph.components) {
    const text = `${mermaidText(component.label)}<br/><small>${mermaidText(component.type)}</small>`;
    // Processors are boxes, connectors (the edges of the system) are stadiums.
    lines.push(component.kind === 'processor' ? `  ${id}["${text}"]` : `  ${id}(["${text}"])`);
  }
  for (const edge of graph.edges) {
    const arrow = edge.deadLetter ? '-.->' : '-->';
    lines.push(edge.label ? `  ${edge.from} ${arrow}|${mermaidText(edge.label)}| ${edge.to}` : `  ${edge.from} ${arrow} ${edge.to}`);
  }
  return `${lines.join('\n')}\n`;
}

/** A Graphviz digraph: `lifeline topology graph --format dot | dot -Tsvg > topology.svg`. */
export function toDot(topology: Topology): string {
  const graph = graphModel(topology);
  const lines = ['digraph topology {', '  rankdir=LR;', '  node [fontname="Helvetica"];', '  edge [fontname="Helvetica", fontsize=10];'];
  for (const [name, id] of graph.topics) lines.push(`  ${id} [label=${dotString(name)}, shape=cylinder];`);
  for (const { id, component } of graph.components) {
    const shape = component.kind === 'processor' ? 'shape=box, style=rounded' : 'shape=box, style="rounded,bold"';
    lines.push(`  ${id} [label=${dotString(`${component.label}\n${component.type}`)}, ${shape}];`);
  }
  for (const edge of graph.edges) {
    const attributes = [
      ...(edge.label ? [`label=${dotString(edge.label)}`] : []),
      ...(edge.deadLetter ? ['style=dashed'] : []),
    ];
    lines.push(`  ${edge.from} -> ${edge.to}${attributes.length > 0 ? ` [${attributes.join(', ')}]` : ''};`);
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** Mermaid labels in quotes take any text but a double quote, which it spells as an entity. */
function mermaidText(text: string): string {
  return text.replace(/"/g, '#quot;');
}

function dotString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}
