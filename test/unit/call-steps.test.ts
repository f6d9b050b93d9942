import { createContextValues, createRouterTransport, createClient, ConnectError, Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { HealthCheckResponse_ServingStatus, Health } from "../../gen/grpc/health/v1/health_pb.js";
import { createStepsInterceptor, type CallStep } from "../../src/interceptors/call-step.ts";

// The steps of the interceptor chain run as one interceptor with the semantics of one interceptor per
// step: enter in order, leave in reverse, and a failure seen by every step outside where it happened.

function recordingSteps(events: string[], throwAt?: { step: number; point: "enter" | "leave" }): CallStep[] {
  return [0, 1, 2].map((n) => ({
    enter: () => {
      events.push(`enter ${n}`);
      if (throwAt?.step === n && throwAt.point === "enter") throw new ConnectError(`from ${n}`, Code.Aborted);
      return n === 1 ? Promise.resolve() : undefined; // one step waits, the others do not
    },
    leave: (res) => {
      events.push(`leave ${n}`);
      if (throwAt?.step === n && throwAt.point === "leave") throw new ConnectError(`from ${n}`, Code.Aborted);
      return res;
    },
    fail: (error) => {
      const message = ConnectError.from(error).rawMessage;
      events.push(`fail ${n}: ${message}`);
      return new ConnectError(`${message} via ${n}`, Code.Aborted);
    },
  }));
}

async function call(steps: CallStep[], handlerThrows = false): Promise<string> {
  const transport = createRouterTransport(
    (router) =>
      router.service(Health, {
        check() {
          if (handlerThrows) throw new ConnectError("handler", Code.Internal);
          return { status: HealthCheckResponse_ServingStatus.SERVING };
        },
      }),
    { router: { interceptors: [createStepsInterceptor(steps)] } },
  );
  try {
    await createClient(Health, transport).check({}, { contextValues: createContextValues() });
    return "ok";
  } catch (error) {
    return ConnectError.from(error).rawMessage;
  }
}

describe("the steps of the interceptor chain", () => {
  it("enter in order and leave in reverse order", async () => {
    const events: string[] = [];
    expect(await call(recordingSteps(events))).toBe("ok");
    expect(events).toEqual(["enter 0", "enter 1", "enter 2", "leave 2", "leave 1", "leave 0"]);
  });

  it("a failure below every step is seen by each, innermost first, each seeing what the inner one returned", async () => {
    const events: string[] = [];
    expect(await call(recordingSteps(events), true)).toBe("handler via 2 via 1 via 0");
    expect(events).toEqual(["enter 0", "enter 1", "enter 2", "fail 2: handler", "fail 1: handler via 2", "fail 0: handler via 2 via 1"]);
  });

  it("a step that refuses in enter is failed by the steps outside it only", async () => {
    const events: string[] = [];
    expect(await call(recordingSteps(events, { step: 1, point: "enter" }))).toBe("from 1 via 0");
    expect(events).toEqual(["enter 0", "enter 1", "fail 0: from 1"]);
  });

  it("a step that throws in leave is failed by the steps outside it only", async () => {
    const events: string[] = [];
    expect(await call(recordingSteps(events, { step: 1, point: "leave" }))).toBe("from 1 via 0");
    expect(events).toEqual(["enter 0", "enter 1", "enter 2", "leave 2", "leave 1", "fail 0: from 1"]);
  });
});
