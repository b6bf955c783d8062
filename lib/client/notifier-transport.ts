/**
 * A DatagramTransport wrapper that lets the simulated device go quiet on the socket its CoapEndpoint
 * uses: `receiving = false` drops every incoming datagram (a sleeping queue-mode device, one
 * rebooting), `sending = false` drops everything outgoing (one that never came back from a firmware
 * update).
 *
 * (It used to send the device's notifications itself, beside the endpoint; `CoapEndpoint.notify()`
 * does that now, so notifications pass through here like every other message.)
 */
import type { DatagramTransport, Peer, PeerAddress } from '../transport/types';

export class NotifierTransport implements DatagramTransport {
  /** False: every incoming datagram is dropped. */
  receiving = true;
  /** False: nothing is sent. */
  sending = true;
  private listener: ((data: Buffer, peer: Peer) => void) | undefined;
  private closed = false;

  constructor(readonly inner: DatagramTransport) {
    inner.onDatagram(this.onInner);
  }

  start(): Promise<PeerAddress> {
    return this.inner.start();
  }

  localAddress(): PeerAddress | undefined {
    return this.inner.localAddress();
  }

  onDatagram(listener: (data: Buffer, peer: Peer) => void): void {
    this.listener = listener;
  }

  send(data: Buffer, peer: PeerAddress): void {
    if (!this.sending || this.closed) return;
    this.inner.send(data, peer);
  }

  close(): Promise<void> {
    this.closed = true;
    return this.inner.close();
  }

  private readonly onInner = (data: Buffer, peer: Peer): void => {
    if (!this.receiving || this.closed) return;
    this.listener?.(data, peer);
  };
}
