import type { Interceptor, StreamRequest, StreamResponse, UnaryRequest, UnaryResponse } from "@connectrpc/connect";

export type CallRequest = UnaryRequest | StreamRequest;
export type CallResponse = UnaryResponse | StreamResponse;

/**
 * One concern of the interceptor chain (request id, logging, error mapping, authentication…), written
 * as the three points where an interceptor acts: before the call goes further in, when it answers, and
 * when it fails. createStepsInterceptor runs a list of them as connect-es would run the same concerns
 * as a list of interceptors, the first outermost.
 */
export interface CallStep {
  /**
   * Before the call goes further in. Throws to refuse it. Returns a promise only when it has to wait
   * (authentication, a fresh MFA check); otherwise the call goes on without an await.
   */
  readonly enter?: (req: CallRequest) => void | Promise<void>;
  /** The call answered from further in: returns the response passed outwards (the same one, or one whose stream is wrapped). */
  readonly leave?: (res: CallResponse, req: CallRequest) => CallResponse;
  /** The call failed further in, or in an inner step: returns what is thrown outwards (the error, or its replacement). */
  readonly fail?: (error: unknown, req: CallRequest) => unknown;
}

/**
 * One connect-es interceptor that runs `steps` in order, the first outermost, with the semantics of one
 * interceptor per step: `enter` in order; `leave` in reverse order; when something throws — an inner
 * step's `enter` or `leave`, the handler, or connect-es below — the `fail` of every step outside it, in
 * reverse order, each seeing what the one inside it returned.
 *
 * Why not one connect-es interceptor per step: each is an async function, and connect-es builds the
 * chain of closures again for every call. On a small call the eight layers cost more than the work
 * they do; this is one async layer, and it only awaits when a step has to wait.
 */
export function createStepsInterceptor(steps: readonly CallStep[]): Interceptor {
  return (next) => async (req) => {
    // How many steps are "around" whatever throws: their `fail`s run.
    let around = 0;
    try {
      for (; around < steps.length; around++) {
        const waiting = steps[around]!.enter?.(req);
        if (waiting !== undefined) await waiting;
      }
      let res: CallResponse = await next(req);
      for (let i = steps.length - 1; i >= 0; i--) {
        around = i;
        const leave = steps[i]!.leave;
        if (leave !== undefined) res = leave(res, req);
      }
      return res as never;
    } catch (error) {
      let thrown = error;
      for (let i = around - 1; i >= 0; i--) {
        const fail = steps[i]!.fail;
        if (fail !== undefined) thrown = fail(thrown, req);
      }
      throw thrown;
    }
  };
}
