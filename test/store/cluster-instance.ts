/**
 * One server instance in a process of its own (the cluster test kills it with SIGKILL): argv = Redis URL,
 * key prefix, instance id. Tells its port over IPC, and the notifications it emits.
 */
import { clusterInstance } from './redis-helpers';

const [url, prefix, instanceId] = process.argv.slice(2);
const instance = clusterInstance(url, prefix, instanceId);
instance.server.on('notification', (notification) => {
  const { endpoint, path, value } = notification;
  process.send?.({ notification: { endpoint, path, value } });
});
instance.start().then(
  (port) => process.send?.({ port }),
  (err: Error) => {
    console.error(err);
    process.exit(1);
  },
);
process.on('disconnect', () => void instance.stop().then(() => process.exit(0)));
