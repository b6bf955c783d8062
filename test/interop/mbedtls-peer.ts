/**
 * Where the Mbed TLS 2.x test client (test/peers/mbedtls-client/lwm2m-client.c) is, building it first when
 * it is missing or older than its source. .ci/run builds it before `npm test` (scripts/build-peers.sh);
 * LWM2M_MBEDTLS_CLIENT names another binary; LWM2M_SKIP_MBEDTLS=1 skips its tests where gcc or
 * libmbedtls-dev cannot be had. Without that variable a client that cannot be built fails the tests:
 * the peer is part of the suite, not an option.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The repository root (tests run from build/test/<folder>). */
const ROOT = resolve(__dirname, '../../..');
const SOURCE = join(ROOT, 'test/peers/mbedtls-client/lwm2m-client.c');
const BUILT = join(ROOT, 'build/peers/mbedtls-lwm2m-client');

/** Whether the tests of the Mbed TLS client are to be skipped (LWM2M_SKIP_MBEDTLS=1). */
export function mbedtlsSkipped(): boolean {
  return process.env.LWM2M_SKIP_MBEDTLS === '1';
}

/** The client's path, built if need be; throws with the compiler's output (or what is missing) otherwise. */
export function mbedtlsClient(): string {
  const named = process.env.LWM2M_MBEDTLS_CLIENT;
  if (named !== undefined && named !== '') {
    if (!existsSync(named)) throw new Error(`LWM2M_MBEDTLS_CLIENT=${named}: no such file`);
    return named;
  }
  if (existsSync(BUILT) && statSync(BUILT).mtimeMs >= statSync(SOURCE).mtimeMs) return BUILT;
  const build = spawnSync('sh', [join(ROOT, 'scripts/build-peers.sh')], { encoding: 'utf8' });
  if (build.status !== 0 || !existsSync(BUILT)) {
    throw new Error(
      'the Mbed TLS test client could not be built (scripts/build-peers.sh needs gcc and libmbedtls-dev: ' +
        '`apt-get install gcc libmbedtls-dev`, or set LWM2M_SKIP_MBEDTLS=1 to skip its tests):\n' +
        `${build.stdout ?? ''}${build.stderr ?? ''}${build.error?.message ?? ''}`,
    );
  }
  return BUILT;
}
