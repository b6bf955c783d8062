/**
 * The client's handshake flights as a connection receives them: reassembly of the next flight, and
 * recognising a retransmission of the latest one (which means ours was lost).
 */

import { HandshakeReassembler, type HandshakeFragment, type HandshakeMessage } from './handshake';

export class ClientFlight {
  private readonly reassembler: HandshakeReassembler;
  /** message_seq of the last message of the client's latest flight: its retransmission means ours was lost. */
  private lastSeq: number;

  /** `lastSeq`: the message_seq of the client's latest message (its ClientHello; -1 for none). */
  constructor(lastSeq: number) {
    this.lastSeq = lastSeq;
    this.reassembler = new HandshakeReassembler(lastSeq + 1);
  }

  /** The start of the last message of the client's latest flight again: it did not get our answer. */
  repeatsLast(fragment: HandshakeFragment): boolean {
    return fragment.messageSeq === this.lastSeq && fragment.fragmentOffset === 0;
  }

  /** A fragment of a message already received. */
  isPast(fragment: HandshakeFragment): boolean {
    return fragment.messageSeq < this.reassembler.nextSeq;
  }

  /** Adds a fragment of the next flight; returns the messages that became complete (in order). */
  add(fragment: HandshakeFragment): HandshakeMessage[] {
    return this.reassembler.add(fragment);
  }

  /** The client's flight is complete (the handshake finished): it ends with the last message received. */
  ended(): void {
    this.lastSeq = this.reassembler.nextSeq - 1;
  }
}
