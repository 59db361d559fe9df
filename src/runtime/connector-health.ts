import type { Logger } from 'pino';
import type { RuntimeMetrics } from '../observe/metrics.ts';
import type { ConnectorHealth } from '../component/component.ts';

/**
 * A connector's view of its link to the outside world (Odoo, a partner, a folder), as the
 * connector reports it through `context.setHealth`: logged on change, exported as
 * `lifeline_component_up`, and shown by /readyz in place of `running` while it is not `up`.
 */
export class ConnectorHealthTracker {
  private current: { state: ConnectorHealth; detail?: string } = { state: 'up' };

  constructor(private readonly label: string, private readonly logger: Logger, private readonly metrics: RuntimeMetrics) {}

  get state(): ConnectorHealth {
    return this.current.state;
  }

  set(state: ConnectorHealth, detail?: string): void {
    if (state !== this.current.state) this.logger.info({ health: state, detail }, 'connector health changed');
    this.current = detail === undefined ? { state } : { state, detail };
    this.metrics.setUp(this.label, state === 'up');
  }

  describe(hostState: string, defaultDetail: string): { state: string; detail: string } {
    const state = hostState === 'running' && this.current.state !== 'up' ? this.current.state : hostState;
    return { state, detail: this.current.detail ?? defaultDetail };
  }
}
