import type { Registration } from '../../lib/server/registration';

/** msg.payload of register-in and the device list: the registration as flows want to read it. */
export function registrationPayload(registration: Registration): Record<string, unknown> {
  return {
    endpoint: registration.endpoint,
    registrationId: registration.id,
    lifetime: registration.lifetime,
    // 'written': the lifetime this server wrote into its account on the device (/1/x/1), which the device has not
    // stated in an Update since; 'device': the one the device stated (or the default, when it stated none).
    lifetimeSource: registration.lifetimeSource ?? 'device',
    version: registration.lwm2mVersion,
    binding: registration.binding,
    queueMode: registration.queueMode,
    ...(registration.smsNumber ? { smsNumber: registration.smsNumber } : {}),
    address: registration.address,
    port: registration.port,
    objects: Object.fromEntries(
      Object.entries(registration.objects).map(([id, entry]) => [
        id,
        entry.version
          ? { version: entry.version, instances: [...entry.instances] }
          : { instances: [...entry.instances] },
      ]),
    ),
    rootPath: registration.rootPath || '/',
    contentFormats: [...registration.supportedContentFormats],
    ...(Object.keys(registration.additionalAttributes).length
      ? { attributes: { ...registration.additionalAttributes } }
      : {}),
    secure: registration.security !== undefined,
    ...(registration.security
      ? { security: { mode: registration.security.mode, identity: registration.security.identity } }
      : {}),
    registeredAt: new Date(registration.registeredAt),
    lastUpdateAt: new Date(registration.lastUpdateAt),
  };
}
