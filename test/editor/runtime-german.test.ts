import { strict as assert } from 'node:assert';
import { startNodeRed, waitFor } from './node-red-process';
import type { NodeRedProcess } from './node-red-process';

/** One comms message of the editor's WebSocket: a topic and its data (status: `{ text, fill, shape }`). */
interface CommsMessage {
  topic: string;
  data: { text?: string } & Record<string, unknown>;
}

/**
 * The runtime's messages in German: a real Node-RED process (node-red-node-test-helper loads no message catalogs)
 * with settings `lang: 'de'`. The nodes' status lines are read as the editor receives them (its comms WebSocket),
 * the warnings from the runtime's log.
 */
describe("runtime messages in the runtime's language (Node-RED with lang: 'de')", function () {
  this.timeout(60000);
  let red: NodeRedProcess | undefined;
  let socket: { close(): void; on(event: string, listener: (data: unknown) => void): void; send(text: string): void };

  before(async function () {
    red = await startNodeRed(
      [
        { id: 'f1', type: 'tab', label: 'LwM2M' },
        {
          id: 'srv',
          type: 'lwm2m-server',
          name: 'de server',
          address: '127.0.0.1',
          port: '0',
          dtlsEnabled: false,
          acceptSend: false,
        },
        { id: 'reg', type: 'lwm2m-register-in', z: 'f1', server: 'srv', x: 140, y: 80, wires: [[]] },
        { id: 'snd', type: 'lwm2m-send-in', z: 'f1', server: 'srv', x: 140, y: 140, wires: [[]] },
        // A read node whose server configuration node is gone: it says so in its status.
        { id: 'orphan', type: 'lwm2m-read', z: 'f1', server: 'gone', x: 140, y: 200, wires: [[]] },
      ],
      30000,
      { adminAuth: false, lang: 'de' },
    );
  });

  after(async function () {
    socket?.close();
    await red?.stop();
  });

  it('shows status texts in German, and logs the nodes warnings in German', async function () {
    const WebSocket = require('ws') as new (url: string) => typeof socket;
    const statuses = new Map<string, string>();
    socket = new WebSocket(`${red!.url.replace(/^http/, 'ws')}/comms`);
    socket.on('message', (data) => {
      for (const message of JSON.parse(String(data)) as CommsMessage[])
        if (message.topic.startsWith('status/')) statuses.set(message.topic.slice(7), message.data.text ?? '');
    });
    await new Promise<void>((resolve, reject) => {
      socket.on('open', () => resolve());
      socket.on('error', reject);
    });
    // Retained: the status every node shows now comes at once.
    socket.send(JSON.stringify({ subscribe: 'status/#' }));

    await waitFor('the German device count on the registration in node', async () =>
      /^:\d+ · 0 Geräte$/.test(statuses.get('reg') ?? ''),
    );
    await waitFor('the read node without server', async () => statuses.get('orphan') === 'kein LwM2M-Server');
    await waitFor('the German warning of the send in node', async () =>
      red!.output().includes('die LwM2M-Server-Konfiguration lehnt Send ab (Geräte erhalten 4.03)'),
    );
    assert.match(red!.output(), /kein lwm2m-server-Konfigurationsknoten ausgewählt/);
  });
});
