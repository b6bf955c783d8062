import type { NodeStatus } from './node-red';

/** Status conventions (Node-RED core style): short text; green dot = working, ring = waiting, red = error. */
export const Status = {
  clear: {} as Record<string, never>,
  /** `note`: something the user should look at (what the store skipped): yellow, and said after the count. */
  listening: (ports: string, devices: number, note?: string): NodeStatus => ({
    fill: note ? 'yellow' : 'green',
    shape: 'dot',
    text: `${ports} · ${devices} device${devices === 1 ? '' : 's'}${note ? ` · ${note}` : ''}`,
  }),
  starting: { fill: 'yellow', shape: 'ring', text: 'starting' } as NodeStatus,
  stopped: { fill: 'grey', shape: 'ring', text: 'stopped' } as NodeStatus,
  error: (text: string): NodeStatus => ({ fill: 'red', shape: 'ring', text: shorten(text) }),
  busy: (text: string): NodeStatus => ({ fill: 'blue', shape: 'ring', text: shorten(text) }),
  ok: (text: string): NodeStatus => ({ fill: 'green', shape: 'dot', text: shorten(text) }),
  waiting: (text: string): NodeStatus => ({ fill: 'yellow', shape: 'ring', text: shorten(text) }),
};

function shorten(text: string): string {
  return text.length > 32 ? text.slice(0, 31) + '…' : text;
}
