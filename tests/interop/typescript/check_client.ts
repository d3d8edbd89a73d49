// Drives runagent-local through openapi-fetch, typed by openapi-typescript.
//
// The types (`runagent-schema`, mapped by tsconfig.json) are generated from
// spec/openapi.yaml by tests/interop/run into target/interop/typescript; the
// run script type-checks this file with tsc before running it with tsx, so a
// path, parameter or body that does not match the spec fails at compile time.
// TypeScript types vanish at run time, so every response is also checked here
// field by field. The server is named by RUNAGENT_BASE_URL (ending in /v1) and
// RUNAGENT_API_KEY, as exported by .ci/with-local-server; it must be fresh (no
// agents yet), because the pagination check counts every agent.
//
// Every call is a typed openapi-fetch call; the event stream is one too, with
// `parseAs: "stream"` so that openapi-fetch hands over the raw body, which is
// parsed here as Server-Sent Events. Exits 1 naming the failed step on any
// disagreement.

import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "runagent-schema";

type Schemas = components["schemas"];
type Agent = Schemas["Agent"];
type OperationAccepted = Schemas["OperationAccepted"];
type Operation = Schemas["Operation"];
type InvokeResult = Schemas["InvokeResult"];
type DeploymentResult = Schemas["DeploymentResult"];

const AGENT_ID = /^agt_[A-Za-z0-9]{1,64}$/;
const OPERATION_ID = /^op_[A-Za-z0-9]{1,64}$/;
const EVENT_ID = /^(str_[A-Za-z0-9]{1,64}):([0-9]{1,10})$/;
const FINAL_OPERATION_STATUSES: ReadonlyArray<Schemas["OperationStatus"]> = ["succeeded", "failed", "cancelled"];
const POLL_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 30_000;

class Mismatch extends Error {}

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Mismatch(message);
}

function show(value: unknown): string {
  return JSON.stringify(value)?.slice(0, 500) ?? String(value);
}

// Checks at run time that an object has the fields the generated type says
// are required; `keyof T` makes tsc reject a field name the spec does not have.
function requireFields<T extends object>(value: unknown, fields: ReadonlyArray<keyof T & string>, what: string): T {
  check(typeof value === "object" && value !== null && !Array.isArray(value), `${what} is not an object: ${show(value)}`);
  for (const field of fields) {
    check(field in value, `${what} lacks the required field ${field}: ${show(value)}`);
  }
  return value as T;
}

function isNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

function isInteger(value: unknown): value is number {
  return isNumber(value) && Number.isInteger(value);
}

function isDateTime(value: unknown): boolean {
  return typeof value === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/.test(value) && !Number.isNaN(Date.parse(value));
}

// Checks the HTTP status and the X-Request-Id header every response must carry.
function expectStatus(response: Response, status: number, what: string, body?: unknown): void {
  check(response.status === status, `${what}: expected HTTP ${status}, got ${response.status}: ${show(body)}`);
  check(response.headers.get("x-request-id"), `${what}: the response has no X-Request-Id header`);
}

function checkAgent(value: unknown, what: string): Agent {
  const agent = requireFields<Agent>(
    value,
    ["id", "name", "description", "framework", "entrypoint", "config", "tags", "status", "created_at", "updated_at"],
    what,
  );
  check(typeof agent.id === "string" && AGENT_ID.test(agent.id), `${what}: id ${show(agent.id)} does not match agt_...`);
  check(["echo", "command"].includes(agent.framework), `${what}: framework ${show(agent.framework)}`);
  check(
    ["created", "deploying", "deployed", "failed"].includes(agent.status),
    `${what}: status ${show(agent.status)} is not an AgentStatus`,
  );
  check(Array.isArray(agent.tags), `${what}: tags is not an array`);
  check(isDateTime(agent.created_at) && isDateTime(agent.updated_at), `${what}: timestamps are not date-times`);
  return agent;
}

function checkInvokeResult(value: unknown, what: string): InvokeResult {
  const result = requireFields<InvokeResult>(value, ["result", "metadata"], what);
  check(typeof result.result === "string", `${what}: result is not a string`);
  const metadata = requireFields<Schemas["InvokeMetadata"]>(result.metadata, ["execution_time", "tokens_used"], `${what}.metadata`);
  check(isNumber(metadata.execution_time) && metadata.execution_time >= 0, `${what}: execution_time is ${show(metadata.execution_time)}`);
  check(isInteger(metadata.tokens_used) && metadata.tokens_used >= 0, `${what}: tokens_used is ${show(metadata.tokens_used)}`);
  return result;
}

function isAccepted(body: Schemas["InvokeResponse"] | OperationAccepted): body is OperationAccepted {
  return "operation_id" in body;
}

type Client = ReturnType<typeof createClient<paths>>;

// --- Steps -----------------------------------------------------------------

async function createAgents(client: Client, count: number): Promise<Agent[]> {
  const agents: Agent[] = [];
  for (let n = 1; n <= count; n++) {
    const name = `interop-ts-${n}`;
    const { data, error, response } = await client.POST("/agents", {
      body: { name, framework: "echo", tags: ["interop"] },
    });
    expectStatus(response, 201, `POST /agents (${name})`, error);
    check(data, `POST /agents (${name}): no body`);
    check(data.status === "success", `${name}: envelope status is ${show(data.status)}`);
    const agent = checkAgent(data.data, `POST /agents (${name}) data`);
    check(agent.name === name, `${name}: name came back as ${show(agent.name)}`);
    check(agent.framework === "echo", `${name}: framework is ${show(agent.framework)}`);
    check(agent.status === "created", `${name}: new agent has status ${show(agent.status)}`);
    check(agent.description === null, `${name}: description should be null, got ${show(agent.description)}`);
    check(agent.entrypoint === null, `${name}: entrypoint should be null, got ${show(agent.entrypoint)}`);
    check(show(agent.config) === "{}", `${name}: config should default to {}, got ${show(agent.config)}`);
    check(show(agent.tags) === '["interop"]', `${name}: tags came back as ${show(agent.tags)}`);
    agents.push(agent);
  }
  check(new Set(agents.map((a) => a.id)).size === count, "two created agents share an id");
  return agents;
}

async function walkPages(client: Client, created: Agent[], limit: number): Promise<string> {
  const total = created.length;
  const pages = Math.ceil(total / limit);
  const seen: string[] = [];
  // One page past the last is read too: the spec says it is empty, not an error.
  for (let page = 1; page <= pages + 1; page++) {
    const what = `GET /agents?page=${page}&limit=${limit}`;
    const { data, error, response } = await client.GET("/agents", { params: { query: { page, limit } } });
    expectStatus(response, 200, what, error);
    check(data, `${what}: no body`);
    check(data.status === "success", `${what}: envelope status is ${show(data.status)}`);
    const p = requireFields<Schemas["Pagination"]>(data.pagination, ["page", "limit", "total", "pages"], `${what} pagination`);
    check(
      p.page === page && p.limit === limit && p.total === total && p.pages === pages,
      `${what}: pagination is ${show(p)}, expected ${show({ page, limit, total, pages })} (the server must be fresh)`,
    );
    check(Array.isArray(data.data), `${what}: data is not an array`);
    const expectedLength = Math.max(0, Math.min(limit, total - (page - 1) * limit));
    check(data.data.length === expectedLength, `${what}: ${data.data.length} agents, expected ${expectedLength}`);
    for (const [i, agent] of data.data.entries()) seen.push(checkAgent(agent, `${what} data[${i}]`).id);
  }
  const want = created.map((a) => a.id);
  check(
    show(seen) === show(want),
    `walking the pages gave ${show(seen)}, expected the created agents oldest first: ${show(want)}`,
  );
  return `${total} agents over ${pages} pages of ${limit} (+1 empty page)`;
}

async function pollOperation(
  client: Client,
  accepted: OperationAccepted,
  kind: Schemas["OperationKind"],
  agentId: string,
): Promise<Operation> {
  requireFields<OperationAccepted>(accepted, ["operation_id", "status", "check_url"], "OperationAccepted");
  const basePath = new URL(process.env.RUNAGENT_BASE_URL!).pathname.replace(/\/$/, "");
  const opId = accepted.operation_id;
  check(OPERATION_ID.test(opId), `operation id ${show(opId)} does not match op_...`);
  check(
    accepted.check_url === `${basePath}/operations/${opId}`,
    `check_url is ${show(accepted.check_url)}, expected ${basePath}/operations/${opId}`,
  );
  const deadline = Date.now() + POLL_TIMEOUT_MS;
  for (;;) {
    const what = `GET /operations/${opId}`;
    const { data, error, response } = await client.GET("/operations/{operation_id}", {
      params: { path: { operation_id: opId } },
    });
    expectStatus(response, 200, what, error);
    check(data && data.status === "success", `${what}: not a success envelope: ${show(data)}`);
    const op = requireFields<Operation>(
      data.data,
      ["operation_id", "kind", "status", "check_url", "agent_id", "created_at", "updated_at"],
      `${what} data`,
    );
    check(op.operation_id === opId, `polled ${opId}, got ${op.operation_id}`);
    check(op.kind === kind, `${opId}: kind is ${show(op.kind)}, expected ${kind}`);
    check(op.agent_id === agentId, `${opId}: agent_id is ${show(op.agent_id)}`);
    check(op.check_url === accepted.check_url, `${opId}: check_url changed to ${show(op.check_url)}`);
    check(isDateTime(op.created_at) && isDateTime(op.updated_at), `${opId}: timestamps are not date-times`);
    if (FINAL_OPERATION_STATUSES.includes(op.status)) {
      check(op.status === "succeeded", `${opId} ended ${op.status}, expected succeeded (error: ${show(op.error)})`);
      check(op.error === undefined, `${opId} succeeded but carries an error: ${show(op.error)}`);
      check(op.result !== undefined, `${opId} succeeded without a result`);
      return op;
    }
    check(["pending", "running"].includes(op.status), `${opId}: status ${show(op.status)} is not an OperationStatus`);
    check(Date.now() < deadline, `${opId} still ${op.status} after ${POLL_TIMEOUT_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function deploy(client: Client, agent: Agent): Promise<string> {
  const what = `POST /agents/${agent.id}/deployments`;
  const { data, error, response } = await client.POST("/agents/{agent_id}/deployments", {
    params: { path: { agent_id: agent.id } },
  });
  expectStatus(response, 202, what, error);
  check(data, `${what}: no body`);
  const op = await pollOperation(client, data, "deploy", agent.id);
  const result = requireFields<DeploymentResult>(op.result, ["agent_id", "status", "deployed_at"], "deployment result");
  check(result.agent_id === agent.id, `deployment result names ${show(result.agent_id)}`);
  check(result.status === "deployed", `deployment result status is ${show(result.status)}`);
  check(isDateTime(result.deployed_at), `deployed_at is ${show(result.deployed_at)}`);

  const got = await client.GET("/agents/{agent_id}", { params: { path: { agent_id: agent.id } } });
  expectStatus(got.response, 200, `GET /agents/${agent.id}`, got.error);
  check(got.data, `GET /agents/${agent.id}: no body`);
  const status = checkAgent(got.data.data, `GET /agents/${agent.id} data`).status;
  check(status === "deployed", `after its deployment the agent is ${show(status)}`);
  return `deploy operation ${data.operation_id} succeeded, agent deployed`;
}

async function invokeSync(client: Client, agent: Agent): Promise<string> {
  const query = "Hello from TypeScript";
  const what = `POST /agents/${agent.id}/invoke`;
  const { data, error, response } = await client.POST("/agents/{agent_id}/invoke", {
    params: { path: { agent_id: agent.id } },
    body: { query },
  });
  expectStatus(response, 200, what, error);
  check(data && !isAccepted(data), `${what}: expected an InvokeResponse, got ${show(data)}`);
  check(data.status === "success", `${what}: envelope status is ${show(data.status)}`);
  const result = checkInvokeResult(data.data, `${what} data`);
  check(result.result === query, `echo answered ${show(result.result)}, expected ${show(query)}`);
  return "200 InvokeResponse echoing the query, with metadata";
}

async function invokeAsync(client: Client, agent: Agent): Promise<string> {
  const query = "poll me please";
  const what = `POST /agents/${agent.id}/invoke (async)`;
  const { data, error, response } = await client.POST("/agents/{agent_id}/invoke", {
    params: { path: { agent_id: agent.id } },
    body: { query, async: true },
  });
  expectStatus(response, 202, what, error);
  check(data && isAccepted(data), `${what}: expected an OperationAccepted, got ${show(data)}`);
  const op = await pollOperation(client, data, "invoke", agent.id);
  const result = checkInvokeResult(op.result, "async invoke result");
  check(result.result === query, `async echo answered ${show(result.result)}, expected ${show(query)}`);
  return `async invoke operation ${data.operation_id} succeeded with the echoed query`;
}

type SseEvent = { event?: string; data?: string; id?: string; retry?: string };

// Parses Server-Sent Events as the HTML standard describes, but strictly:
// where a browser would silently ignore something, this reports a mismatch
// instead (a field other than the four the spec documents, a repeated field,
// or a stream that ends in the middle of an event, since the server must
// finish every event it starts).
function parseSse(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  let event: SseEvent = {};
  let data: string[] = [];
  let open = false;
  const lines = text.split(/\r\n|\r|\n/);
  // The text after the last line break is an unterminated line: it must be empty.
  const tail = lines.pop();
  check(tail === "", `the stream ends with an unterminated line: ${show(tail)}`);
  for (const line of lines) {
    if (line === "") {
      if (open) {
        if (data.length > 0) event.data = data.join("\n");
        events.push(event);
      }
      event = {};
      data = [];
      open = false;
      continue;
    }
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    open = true;
    if (name === "data") {
      data.push(value);
    } else if (name === "event" || name === "id" || name === "retry") {
      check(event[name] === undefined, `SSE event repeats its ${name} field: ${show(line)}`);
      event[name] = value;
    } else {
      throw new Mismatch(`SSE line with an unknown field: ${show(line)}`);
    }
  }
  check(!open, `the stream ended in the middle of an event: ${show(event)} ${show(data)}`);
  return events;
}

async function stream(client: Client, agent: Agent): Promise<string> {
  const postQuery = "streamed word by word";
  const post = await client.POST("/agents/{agent_id}/stream", {
    params: { path: { agent_id: agent.id } },
    body: { query: postQuery },
    headers: { Accept: "text/event-stream" },
    parseAs: "stream",
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const postSummary = await readStream(post, agent, postQuery, `POST /agents/${agent.id}/stream`);
  const getQuery = "the EventSource form";
  const get = await client.GET("/agents/{agent_id}/stream", {
    params: { path: { agent_id: agent.id }, query: { query: getQuery } },
    headers: { Accept: "text/event-stream" },
    parseAs: "stream",
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  await readStream(get, agent, getQuery, `GET /agents/${agent.id}/stream`);
  return `POST: ${postSummary}; GET (query string): the same checks`;
}

async function readStream(
  result: { data?: ReadableStream<Uint8Array> | null; error?: unknown; response: Response },
  agent: Agent,
  query: string,
  what: string,
): Promise<string> {
  const { data, error, response } = result;
  expectStatus(response, 200, what, error);
  const contentType = response.headers.get("content-type") ?? "";
  check(contentType.split(";")[0].trim() === "text/event-stream", `${what}: Content-Type is ${show(contentType)}`);
  check(data, `${what}: no body`);
  // Reading to the end also checks that the server closes the connection
  // after the final event (otherwise the request times out).
  let text = "";
  const decoder = new TextDecoder();
  for await (const bytes of data) text += decoder.decode(bytes, { stream: true });
  text += decoder.decode();
  try {
    return checkEvents(parseSse(text), agent, query);
  } catch (err) {
    if (err instanceof Mismatch) throw new Mismatch(`${what}: ${err.message}`);
    throw err;
  }
}

// Checks a whole stream against the documented sequence and x-sse-events.
function checkEvents(events: SseEvent[], agent: Agent, query: string): string {
  const names = events.map((e) => e.event);
  check(events.length >= 2, `the stream has ${events.length} events: ${show(names)}`);
  check(names[0] === "start", `the stream begins with ${show(names[0])}, expected start: ${show(names)}`);
  check(names[names.length - 1] === "done", `the stream ends with ${show(names[names.length - 1])}, expected done: ${show(names)}`);
  check(names.slice(1, -1).every((n) => n === "chunk"), `between start and done there must be only chunks: ${show(names)}`);

  const payloads = events.map((e, seq) => {
    check(e.data !== undefined, `event ${seq} (${e.event}) has no data`);
    check(e.retry === undefined || /^[0-9]+$/.test(e.retry), `event ${seq} retry is ${show(e.retry)}`);
    try {
      return JSON.parse(e.data) as unknown;
    } catch (err) {
      throw new Mismatch(`event ${seq} data is not JSON (${err}): ${show(e.data)}`);
    }
  });
  // x-sse-events names the schema of each event's data.
  const start = requireFields<Schemas["StreamStart"]>(payloads[0], ["stream_id", "agent_id", "created_at"], "start data");
  const chunks = payloads
    .slice(1, -1)
    .map((p, i) => requireFields<Schemas["StreamChunk"]>(p, ["index", "text"], `chunk ${i} data`));
  const done = requireFields<Schemas["StreamDone"]>(payloads[payloads.length - 1], ["result", "metadata"], "done data");
  checkInvokeResult(done, "done data");

  check(start.agent_id === agent.id, `start names agent ${show(start.agent_id)}, expected ${agent.id}`);
  check(isDateTime(start.created_at), `start created_at is ${show(start.created_at)}`);
  events.forEach((e, seq) => {
    const match = EVENT_ID.exec(e.id ?? "");
    check(match, `event ${seq} id ${show(e.id)} is not <stream_id>:<sequence>`);
    check(
      match[1] === start.stream_id && Number(match[2]) === seq,
      `event ${seq} id is ${show(e.id)}, expected ${start.stream_id}:${seq}`,
    );
  });
  check(
    chunks.every((c, i) => c.index === i && typeof c.text === "string"),
    `chunk indexes are ${show(chunks.map((c) => c.index))}, expected 0..${chunks.length - 1}`,
  );
  const joined = chunks.map((c) => c.text).join("");
  check(joined === done.result, `the chunks make ${show(joined)} but done.result is ${show(done.result)}`);
  check(done.result === query, `the echo stream answered ${show(done.result)}, expected ${show(query)}`);
  const words = query.split(" ").length;
  check(chunks.length === words, `echo streams word by word: ${chunks.length} chunks for ${words} words`);
  return `start, ${chunks.length} chunks, done; ids ${start.stream_id}:0..${events.length - 1}; connection closed`;
}

async function batch(client: Client, agent: Agent): Promise<string> {
  const items: Schemas["InvokeRequest"][] = [
    { query: "first question" },
    { query: "second question" },
    // Batch items always run synchronously: the spec promises an INVALID_INPUT item.
    { query: "third question", async: true },
  ];
  const what = `POST /agents/${agent.id}/batch`;
  const { data, error, response } = await client.POST("/agents/{agent_id}/batch", {
    params: { path: { agent_id: agent.id } },
    body: { batch: items },
  });
  expectStatus(response, 200, what, error);
  check(data && data.status === "success", `${what}: not a success envelope: ${show(data)}`);
  check(Array.isArray(data.data) && data.data.length === items.length, `${what}: ${show(data.data)} is not ${items.length} results`);
  for (const i of [0, 1]) {
    const item = data.data[i];
    // `status` discriminates the BatchItem union (InvokeResponse | ErrorResponse) for tsc too.
    check(item.status === "success", `batch item ${i} is not a success: ${show(item)}`);
    const result = checkInvokeResult(item.data, `batch item ${i} data`);
    check(result.result === items[i].query, `batch item ${i} answered ${show(result.result)}`);
  }
  const item = data.data[2];
  check(item.status === "error", `batch item 2 (async: true) is not an error: ${show(item)}`);
  const apiError = requireFields<Schemas["ApiError"]>(item.error, ["code", "message"], "batch item 2 error");
  check(apiError.code === "INVALID_INPUT", `batch item 2 (async: true) has code ${show(apiError.code)}, expected INVALID_INPUT`);
  const field = apiError.details?.field;
  check(field === undefined || field.startsWith("batch[2]"), `batch item 2 error names field ${show(field)}, expected batch[2]...`);
  return "3 items in order: 2 successes echoing their queries, 1 INVALID_INPUT (async item)";
}

async function errorEnvelope(client: Client): Promise<string> {
  const agentId = "agt_doesnotexist";
  const what = `GET /agents/${agentId}`;
  const { data, error, response } = await client.GET("/agents/{agent_id}", { params: { path: { agent_id: agentId } } });
  expectStatus(response, 404, what, data);
  const contentType = response.headers.get("content-type") ?? "";
  check(contentType.split(";")[0].trim() === "application/json", `${what}: Content-Type is ${show(contentType)}`);
  check(error, `${what}: openapi-fetch gave no error body`);
  const envelope = requireFields<Schemas["ErrorResponse"]>(error, ["status", "error"], `${what} body`);
  check(envelope.status === "error", `${what}: envelope status is ${show(envelope.status)}`);
  const apiError = requireFields<Schemas["ApiError"]>(envelope.error, ["code", "message"], `${what} error`);
  check(apiError.code === "NOT_FOUND", `${what}: code is ${show(apiError.code)}, expected NOT_FOUND`);
  check(typeof apiError.message === "string" && apiError.message.length > 0, `${what}: the error message is empty`);
  return "404 ErrorResponse with code NOT_FOUND";
}

async function main(): Promise<number> {
  const baseUrl = process.env.RUNAGENT_BASE_URL;
  const apiKey = process.env.RUNAGENT_API_KEY;
  if (!baseUrl || !apiKey) {
    console.error("check_client.ts: RUNAGENT_BASE_URL and RUNAGENT_API_KEY must be set");
    return 2;
  }
  const client = createClient<paths>({ baseUrl });
  const auth: Middleware = {
    onRequest({ request }) {
      request.headers.set("Authorization", `Bearer ${apiKey}`);
      return request;
    },
  };
  client.use(auth);

  const summary: Array<[string, string]> = [];
  async function step(name: string, run: () => Promise<string>): Promise<void> {
    try {
      summary.push([name, await run()]);
    } catch (err) {
      if (err instanceof Mismatch) throw new Mismatch(`${name}: ${err.message}`);
      console.error(err);
      throw new Mismatch(`${name}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    }
  }

  try {
    let agents: Agent[] = [];
    await step("create agents", async () => {
      agents = await createAgents(client, 3);
      return `${agents.length} echo agents, each answered 201 with status created`;
    });
    await step("list agents with pagination", () => walkPages(client, agents, 2));
    await step("deploy and poll the operation", () => deploy(client, agents[0]));
    await step("invoke", () => invokeSync(client, agents[0]));
    await step("stream (raw SSE)", () => stream(client, agents[0]));
    await step("batch", () => batch(client, agents[0]));
    await step("async invoke and poll the operation", () => invokeAsync(client, agents[0]));
    await step("error envelope", () => errorEnvelope(client));
  } catch (err) {
    console.error(`typescript interop: FAIL: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }

  console.log("typescript interop (openapi-typescript + openapi-fetch): all checks passed");
  for (const [name, detail] of summary) console.log(`  ok  ${name}: ${detail}`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error("typescript interop: FAIL:", err);
    process.exitCode = 1;
  },
);
