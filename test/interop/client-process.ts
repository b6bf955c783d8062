import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { waitFor } from '../client/helpers';

/** A client process: its output kept for assertions (and for the failure message), killed by `stop()`. */
export class ClientProcess {
  readonly child: ChildProcessWithoutNullStreams;
  output = '';
  private readonly exited: Promise<void>;

  constructor(binary: string, args: string[], cwd?: string) {
    this.child = spawn(binary, args, { cwd });
    this.child.stdout.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.child.stderr.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.child.stdin.on('error', () => undefined); // the client may be gone when we write
    this.exited = new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.once('error', (err) => {
        this.output += `spawn failed: ${err.message}\n`;
        resolve();
      });
    });
  }

  get running(): boolean {
    return this.child.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  command(line: string): void {
    this.child.stdin.write(line + '\n');
  }

  async waitFor(pattern: RegExp, timeoutMs: number, what: string): Promise<void> {
    await waitFor(() => pattern.test(this.output), timeoutMs, `${what}; client output:\n${this.tail()}`);
  }

  tail(lines = 40): string {
    return this.output.split('\n').slice(-lines).join('\n');
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(graceMs = 1000): Promise<void> {
    if (this.running) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    this.child.stdin.destroy();
  }
}
