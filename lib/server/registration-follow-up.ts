/**
 * What the server does when a registration starts, changes or ends: wakes the device's queue, forgets what it knew
 * of a replaced or ended registration (attribute writers, written lifetime, observations), re-observes what a
 * rebooted device was observed for, then tells the server's listeners.
 */
import type { ObservationService } from './observation-service';
import type { QueueModeService } from './queue-mode';
import type { Registration } from './registration';
import type { StoredObservation } from './stores';

export interface RegistrationFollowUpHooks {
  /** Re-observe each dropped observation of a device registering again (the server's option, read at each one). */
  readonly options: { readonly reobserveOnRegister: boolean };
  /** Forgets what the operations kept about a registration (attribute writers, the written lifetime). */
  forget(registrationId: string): void;
  observe(endpoint: string, path: string, options: { owner: string; format?: number }): Promise<unknown>;
  registered(registration: Registration, replaced?: Registration): void;
  updated(registration: Registration, previous: Registration): void;
  ended(registration: Registration, kind: 'deregistered' | 'expired'): void;
  error(error: Error): void;
}

export class RegistrationFollowUp {
  constructor(
    private readonly queueMode: QueueModeService,
    private readonly observations: ObservationService,
    private readonly hooks: RegistrationFollowUpHooks,
  ) {}

  registered(registration: Registration, replaced?: Registration): void {
    const hooks = this.hooks;
    this.queueMode.touch(registration);
    let reobserve: Promise<StoredObservation[]> = Promise.resolve([]);
    if (replaced) {
      hooks.forget(replaced.id);
      // The device rebooted or lost its session: its observations died with it.
      reobserve = this.observations.dropRegistration(replaced, 'replaced by a new registration');
    }
    hooks.registered(registration, replaced);
    if (!hooks.options.reobserveOnRegister) return;
    void reobserve
      .then((dropped) => {
        if (dropped.length === 0) return;
        // After the 2.01 has gone out: a device may not answer requests before it knows it is registered.
        setImmediate(() => {
          for (const observation of dropped) {
            for (const owner of observation.owners) {
              hooks
                .observe(registration.endpoint, observation.path, { owner, format: observation.contentFormat })
                .catch((err: Error) =>
                  hooks.error(
                    new Error(`re-observing ${observation.path} on ${registration.endpoint}: ${err.message}`),
                  ),
                );
            }
          }
        });
      })
      .catch((err: Error) => hooks.error(err));
  }

  updated(registration: Registration, previous: Registration): void {
    this.queueMode.touch(registration);
    if (registration.peerKey !== previous.peerKey) {
      this.observations.movePeer(registration).catch((err: Error) => this.hooks.error(err));
    }
    this.hooks.updated(registration, previous);
  }

  ended(registration: Registration, kind: 'deregistered' | 'expired'): void {
    this.hooks.forget(registration.id);
    this.queueMode.forget(registration, kind);
    this.observations.dropRegistration(registration, kind).catch((err: Error) => this.hooks.error(err));
    this.hooks.ended(registration, kind);
  }
}
