import { fileSource } from '../../connectors/files/file-source.ts';
import { odooSink } from '../../connectors/odoo/odoo-sink.ts';
import { odooSource } from '../../connectors/odoo/odoo-source.ts';
import { webhookSource } from '../../connectors/webhook/webhook-source.ts';
import { countByKey } from '../../processors/count-by-key.ts';
import { dedup } from '../../processors/dedup.ts';
import { enrich } from '../../processors/enrich.ts';
import { slaTracker } from '../../processors/sla-tracker.ts';
import { ComponentRegistry } from '../component/component-registry.ts';
import type { ComponentDefinition } from '../component/component.ts';

/** Every component type Lifeline knows. A new component is one file and one line here. */
export function buildComponentRegistry(): ComponentRegistry {
  return new ComponentRegistry([
    countByKey,
    webhookSource,
    fileSource,
    odooSource,
    odooSink,
    dedup,
    enrich,
    slaTracker,
  ]);
}
