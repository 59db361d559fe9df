import type { FlowEdge, FlowNode } from './api.ts';

export interface PlacedNode extends FlowNode {
  x: number;
  y: number;
  layer: number;
}

export const NODE_WIDTH = 200;
export const NODE_HEIGHT = 74;
const LAYER_GAP = 80;
const ROW_GAP = 22;

/**
 * Left to right by the longest path from the roots (sources, Odoo, external topics), so sources
 * come first, then processors, then sinks, then Odoo. Cycles (a sink writing back into a topic a
 * processor reads) are cut by bounding the passes.
 */
export function layout(nodes: readonly FlowNode[], edges: readonly FlowEdge[]): { nodes: PlacedNode[]; width: number; height: number } {
  const layer = new Map(nodes.map((node) => [node.id, 0]));
  // Odoo as the target of sinks sits at the end; as the origin of sources at the start.
  const forward = edges.filter((edge) => !(edge.from.startsWith('odoo:') && nodes.find((node) => node.id === edge.to)?.kind === 'source'));
  for (let pass = 0; pass < nodes.length; pass++) {
    let changed = false;
    for (const edge of forward) {
      const next = (layer.get(edge.from) ?? 0) + 1;
      if (next > (layer.get(edge.to) ?? 0) && next < nodes.length + 1) {
        layer.set(edge.to, next);
        changed = true;
      }
    }
    if (!changed) break;
  }
  const odooSources = edges.filter((edge) => edge.from.startsWith('odoo:') && nodes.find((node) => node.id === edge.to)?.kind === 'source');
  const maxLayer = Math.max(0, ...layer.values());
  for (const node of nodes) if (node.kind === 'external' && odooSources.some((edge) => edge.from === node.id) && !forward.some((edge) => edge.to === node.id)) layer.set(node.id, 0);
  for (const node of nodes) if (node.kind === 'external' && forward.some((edge) => edge.to === node.id)) layer.set(node.id, maxLayer);
  const byLayer = new Map<number, FlowNode[]>();
  for (const node of nodes) {
    const list = byLayer.get(layer.get(node.id) ?? 0) ?? [];
    list.push(node);
    byLayer.set(layer.get(node.id) ?? 0, list);
  }
  const placed: PlacedNode[] = [];
  let height = 0;
  for (const [index, list] of [...byLayer].sort(([a], [b]) => a - b)) {
    list.sort((a, b) => a.id.localeCompare(b.id));
    list.forEach((node, row) => {
      placed.push({ ...node, layer: index, x: 20 + index * (NODE_WIDTH + LAYER_GAP), y: 20 + row * (NODE_HEIGHT + ROW_GAP) });
    });
    height = Math.max(height, 20 + list.length * (NODE_HEIGHT + ROW_GAP));
  }
  const width = 40 + (Math.max(0, ...placed.map((node) => node.layer)) + 1) * (NODE_WIDTH + LAYER_GAP);
  return { nodes: placed, width, height: height + 20 };
}
