/**
 * Our latest handshake flight as records (fragmented to fit the PMTU under the epoch's protection),
 * kept to answer the client's retransmissions, and its retransmission timer.
 */

import type { RecordProtection } from './cipher';
import { ContentType } from './constants';
import { RetransmitTimer, packDatagrams } from './flight';
import { HANDSHAKE_HEADER_LENGTH, fragmentMessage, type HandshakeMessage } from './handshake';
import { RECORD_HEADER_LENGTH } from './record';
import type { RecordLayer } from './record-layer';
import type { ServerFlight } from './server-handshake';

/** One entry of a flight: re-encoded (fresh sequence number) each time the flight is sent. */
interface FlightRecord {
  type: number;
  epoch: number;
  payload: Buffer;
}

export class FlightSender {
  /** Our latest flight, kept to answer the client's retransmissions. */
  private flight: FlightRecord[] | undefined;
  private readonly timer: RetransmitTimer;

  constructor(
    private readonly records: RecordLayer,
    /** Largest datagram we send. */
    private readonly pmtu: number,
    /** Sends a datagram to the peer (wherever it is by then). */
    private readonly sendDatagram: (datagram: Buffer) => void,
    /** Counts a retransmission. */
    private readonly retransmitted: () => void,
  ) {
    this.timer = new RetransmitTimer(() => this.resend());
  }

  /**
   * Makes `flight` ours: the clear part, then ChangeCipherSpec and the part under the new keys
   * (`serverKeys`: from then on our records go out in epoch 1).
   */
  set(flight: ServerFlight, serverKeys: RecordProtection | undefined): void {
    const records = this.flightRecords(flight.plain, 0);
    if (flight.encrypted.length > 0) {
      this.records.useWriteKeys(serverKeys);
      records.push({ type: ContentType.changeCipherSpec, epoch: 0, payload: Buffer.from([1]) });
      records.push(...this.flightRecords(flight.encrypted, 1));
    }
    this.flight = records;
  }

  /** Nothing left to retransmit. */
  clear(): void {
    this.flight = undefined;
  }

  /** Handshake messages as flight records, fragmented to fit the PMTU under the epoch's protection. */
  private flightRecords(messages: HandshakeMessage[], epoch: number): FlightRecord[] {
    const maxBody = this.pmtu - RECORD_HEADER_LENGTH - HANDSHAKE_HEADER_LENGTH - this.records.overhead(epoch);
    return messages.flatMap((message) =>
      fragmentMessage(message, maxBody).map((payload) => ({ type: ContentType.handshake, epoch, payload })),
    );
  }

  send(): void {
    const flight = this.flight;
    if (flight === undefined) return;
    const records = flight.map((entry) => this.records.seal(entry.type, entry.epoch, entry.payload));
    for (const datagram of packDatagrams(records, this.pmtu)) this.sendDatagram(datagram);
  }

  resend(): void {
    if (this.flight === undefined) return;
    this.retransmitted();
    this.send();
  }

  startTimer(): void {
    this.timer.start();
  }

  stopTimer(): void {
    this.timer.stop();
  }
}
