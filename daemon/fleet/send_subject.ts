// Requests on nlbridge.<host>.send (--nats-send on): each answered with what
// POST /send answers for the same body, its HTTP status in the header
// `status`. The handler (main.ts) brings the body parser, validation, scope,
// rate limit, bus.send and problem table of POST /send, so this room needs
// none of them.

import * as nats from '@nats-io/transport-node';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type pino from 'pino';

/** What a send request's body (its bytes, as they came) becomes. Never throws. */
export type SendHandler = (body: Uint8Array) => Promise<{ status: number; body: unknown }>;

export class SendSubject {
  /** Send requests answered, by the answer's HTTP status (a publish not carried out counts as 400). */
  readonly answers: Record<string, number> = {};
  private unanswerable = 0;
  private sub: Subscription | null = null;
  private conn: NatsConnection | null = null;

  private refused = 0;

  /** `refusal`: why sends are not carried out now (a stream captures the subject: stream_keeper.ts), or null. */
  constructor(
    private readonly send: SendHandler,
    private readonly log: pino.Logger,
    private readonly subject: string,
    private readonly refusal: () => string | null = () => null,
  ) {}

  /**
   * Answers requests on the connection (while this daemon holds its host id:
   * host_claim.ts). In a queue group, so that even in the moment before two
   * daemons of one host id have heard each other, a request is carried out once.
   */
  attach(c: NatsConnection): void {
    if (this.conn === c && this.sub !== null) return;
    this.detach();
    this.conn = c;
    // The client subscribes again by itself after a reconnect.
    this.sub = c.subscribe(this.subject, {
      queue: 'nlbridge',
      callback: (_err, m) => void this.answer(m).catch((err: unknown) => this.log.error({ err }, 'NATS send reply failed')),
    });
    this.log.info({ subject: this.subject }, 'answering send requests on NATS (--nats-send on), within "natsSendScope"');
  }

  /** Stops answering (this daemon stands aside, or the connection is gone). */
  detach(): void {
    if (this.sub !== null && this.conn !== null && !this.conn.isClosed()) this.sub.unsubscribe();
    this.sub = null;
    this.conn = null;
  }

  async answer(m: Msg): Promise<void> {
    if (!m.reply) {
      // A publish, not a request: its sender could not be told what became of
      // it, so it is not carried out (a send that fails would be lost in
      // silence). Counted as a bad request; logged at the 1st, 2nd, 4th… one.
      this.count(400);
      this.unanswerable++;
      if ((this.unanswerable & (this.unanswerable - 1)) === 0)
        this.log.warn(
          { subject: m.subject, count: this.unanswerable },
          'a message on the send subject without a reply subject was not carried out: send a request (request-reply), not a publish',
        );
      return;
    }
    const refusal = this.refusal();
    if (refusal !== null) {
      // A stream captures the subject: it has answered with its PubAck and
      // kept the request. Carried out too, the send would be done while its
      // requester holds an answer that says nothing of it (a 503 from a full
      // stream: a retry sends twice). So not carried out, and not answered
      // (the requester has its answer). Counted as 503; logged at the 1st,
      // 2nd, 4th… one.
      this.count(503);
      this.refused++;
      if ((this.refused & (this.refused - 1)) === 0)
        this.log.warn({ subject: m.subject, count: this.refused, why: refusal }, 'a send request on NATS was not carried out');
      return;
    }
    const { status, body } = await this.send(m.data);
    this.count(status);
    const h = nats.headers();
    h.set('status', String(status));
    // As HTTP's 429 says when to come back (the problem's retryAfter, in seconds).
    const retryAfter = (body as { retryAfter?: unknown } | null)?.retryAfter;
    if (status === 429 && retryAfter !== undefined) h.set('Retry-After', String(retryAfter));
    m.respond(JSON.stringify(body), { headers: h });
  }

  private count(status: number): void {
    this.answers[status] = (this.answers[status] ?? 0) + 1;
  }
}
