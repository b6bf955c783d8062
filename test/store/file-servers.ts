import { Lwm2mServer } from '../../lib/server/lwm2m-server';
import type { Lwm2mServerOptions } from '../../lib/server/lwm2m-server';
import { FileObservationStore, FileRegistrationStore, FileSecurityStore, openJournal } from '../../lib/store/file';
import type { Journal } from '../../lib/store/file/journal';

export interface FileServer {
  server: Lwm2mServer;
  journal: Journal;
}

/**
 * Servers on the file store of a folder, as successive runs of a process would make them: each one opens the
 * journal again and reads its stores from it. `stop()` ends one run (its socket, then its file); `stopAll()`
 * whatever a test left running.
 */
export class FileServers {
  private readonly running = new Set<FileServer>();

  /**
   * A server (not started) with registrations, observations and credentials in `dir`'s journal; `more` adds
   * options that need the journal too (a DTLS session store, a store for held requests).
   */
  open(
    dir: string,
    options: Partial<Lwm2mServerOptions>,
    more: (journal: Journal) => Partial<Lwm2mServerOptions> = () => ({}),
    secret?: string,
  ): FileServer {
    const journal = openJournal(dir, 'server', secret ? { secret } : {});
    const server = new Lwm2mServer({
      address: '127.0.0.1',
      registrationStore: new FileRegistrationStore(journal),
      observationStore: new FileObservationStore(journal),
      securityStore: new FileSecurityStore(journal),
      ...options,
      ...more(journal),
    });
    const opened = { server, journal };
    this.running.add(opened);
    return opened;
  }

  async stop(opened: FileServer): Promise<void> {
    this.running.delete(opened);
    await opened.server.stop();
    await opened.journal.close();
  }

  async stopAll(): Promise<void> {
    for (const opened of [...this.running]) await this.stop(opened);
  }
}
