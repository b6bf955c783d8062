import { COAP_CODE_TEXT } from '../../lib/server/errors';
import { t } from './i18n';
import type { NodeStatus } from './node-red';

/**
 * Status conventions (Node-RED core style): short text; green dot = working, ring = waiting, red = error.
 * The words come from the shared catalog (`lwm2m.status.*` in lwm2m-server.json), in the runtime's language; the
 * CoAP codes and their reason phrases (`4.04 Not Found`) are the protocol's and stay as they are.
 */
export const Status = {
  clear: {} as Record<string, never>,
  /** `note`: something the user should look at (what the store skipped): yellow, and said after the count. */
  listening: (ports: string, devices: number, note?: string): NodeStatus =>
    noted({ fill: 'green', shape: 'dot', text: `${ports} · ${t('status.devices', { count: devices })}` }, note),
  noted,
  get starting(): NodeStatus {
    return { fill: 'yellow', shape: 'ring', text: t('status.starting') };
  },
  get stopped(): NodeStatus {
    return { fill: 'grey', shape: 'ring', text: t('status.stopped') };
  },
  error: (text: string): NodeStatus => ({ fill: 'red', shape: 'ring', text: shorten(text) }),
  busy: (text: string): NodeStatus => ({ fill: 'blue', shape: 'ring', text: shorten(text) }),
  ok: (text: string): NodeStatus => ({ fill: 'green', shape: 'dot', text: shorten(text) }),
  waiting: (text: string): NodeStatus => ({ fill: 'yellow', shape: 'ring', text: shorten(text) }),
  /** An operation the device answered (core http request style): `2.05 · 12 ms`; just the code without a time. */
  answered: (code: string | undefined, rttMs: number | undefined): NodeStatus => ({
    fill: 'green',
    shape: 'dot',
    text: shorten(
      `${code ?? t('status.done')}${rttMs !== undefined ? ` · ${t('status.rtt', { ms: Math.round(rttMs) })}` : ''}`,
    ),
  }),
  /**
   * An operation that failed: a device's code with its meaning (`4.04 Not Found`), else why (`timeout`): the code
   * as msg.lwm2m.code has it, in every language, so that the status names what a Catch or switch node tests.
   */
  failed: (code: string): NodeStatus => ({
    fill: 'red',
    shape: 'ring',
    text: shorten(COAP_CODE_TEXT[code] ? `${code} ${COAP_CODE_TEXT[code]}` : code),
  }),
  /** Observations a node holds, and when the last notification came (the runtime's local time). */
  observing: (count: number, lastAt: Date | undefined): NodeStatus =>
    count > 0
      ? {
          fill: 'green',
          shape: 'dot',
          text: shorten(
            `${t('status.observing', { count })}${lastAt ? ` · ${t('status.last', { time: clock(lastAt) })}` : ''}`,
          ),
        }
      : { fill: 'yellow', shape: 'ring', text: t('status.notObserving') },
};

/** `status` with `note` after its text, yellow: something the user should look at (what the store skipped). */
function noted(status: NodeStatus, note: string | undefined): NodeStatus {
  return note ? { ...status, fill: 'yellow', text: `${status.text} · ${note}` } : status;
}

/** HH:MM:SS: a time of day short enough for a status line. */
function clock(time: Date): string {
  return [time.getHours(), time.getMinutes(), time.getSeconds()].map((part) => String(part).padStart(2, '0')).join(':');
}

function shorten(text: string): string {
  return text.length > 32 ? text.slice(0, 31) + '…' : text;
}
