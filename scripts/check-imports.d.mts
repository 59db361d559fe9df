export type ImportGraph = Map<string, Array<{ to: string; dynamic: boolean }>>;
export function importGraph(): ImportGraph;
export function findCycles(graph: ImportGraph): string[][];
export function findForbiddenArrows(graph: ImportGraph): string[];
export function devLoadedAtStartup(graph: ImportGraph, entries?: string[]): string[];
export function checkImports(graph?: ImportGraph): { cycles: string[][]; arrows: string[]; files: number; imports: number };
